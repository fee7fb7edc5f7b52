import { chmod, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sha256Hex } from '../hash/index.js'
import { LAYOUT_FILE_MODE, MAX_DOCKER_SAVE_JSON_BYTES } from './constants.js'
import { isRecord } from './descriptor.js'
import { blobPath, blobRelPath } from './digest.js'
import { ArchiveUnsupportedError, OciBlobDigestMismatchError } from './errors.js'
import { normalizeDockerReference } from './image-name.js'
import { readJsonDocument } from './json-document.js'
import {
  ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME, OCI_IMAGE_CONFIG, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST,
  OCI_LAYER_TAR, OCI_LAYER_TAR_GZIP, OCI_INDEX_FILE_NAME, OCI_LAYOUT_FILE_NAME,
} from './media-types.js'
import { OCI_LAYOUT_FILE_BYTES } from './layout.js'
import { normalizeEntryPath } from './tar-path.js'

export const DOCKER_SAVE_MANIFEST = 'manifest.json'

/** A file extracted from an archive, hashed on the way in. */
export interface ArchiveFile {
  location: string
  sha256: string
  size: number
  /** Starts with the gzip magic bytes. */
  gzip: boolean
}

interface DockerSaveImage { config: string, repoTags: string[], layers: string[] }

interface Descriptor { mediaType: string, digest: string, size: number, annotations?: Record<string, string> }

/**
 * Turns a legacy `docker save` archive (manifest.json, `<config>.json`, layer tars)
 * into an OCI layout in destDir, the way containerd imports one:
 * - the config blob is the config file's bytes unchanged (its digest is the image ID);
 * - layers are the layer files' bytes unchanged, typed by their content
 *   (`application/vnd.docker.image.rootfs.diff.tar`, or `.tar.gzip` when gzip'ed);
 * - one Docker schema2 manifest per image, written compact (`JSON.stringify`);
 * - index.json lists it once per RepoTag with `io.containerd.image.name` (the full
 *   name, Docker short names expanded) and `org.opencontainers.image.ref.name` (the
 *   tag); an image without tags is listed once without annotations.
 * Uncompressed layers are checked against the config's rootfs.diff_ids: in this
 * format nothing else vouches for a layer's bytes.
 * Returns the sha256 of every layout file, by layout-relative path.
 */
export async function convertDockerSave (destDir: string, files: ReadonlyMap<string, ArchiveFile>, options: { signal?: AbortSignal } = {}): Promise<Map<string, string>> {
  const { signal } = options
  const written = new Map<string, string>()
  const images = await readDockerSaveManifest(files, signal)
  const manifests: Descriptor[] = []
  for (const image of images) {
    const config = lookup(files, image.config)
    const diffIds = await readDiffIds(config, image.config, signal)
    if (diffIds.length !== image.layers.length) {
      throw new ArchiveUnsupportedError(`docker save image config ${image.config} lists ${diffIds.length} diff_ids but manifest.json lists ${image.layers.length} layers; the archive is inconsistent: re-export it`)
    }
    const layers: Descriptor[] = []
    for (const [i, layerPath] of image.layers.entries()) {
      const layer = lookup(files, layerPath)
      if (!layer.gzip && diffIds[i] !== `sha256:${layer.sha256}`) {
        throw new OciBlobDigestMismatchError(layerPath, diffIds[i] ?? '', `sha256:${layer.sha256}`)
      }
      layers.push({ mediaType: layer.gzip ? OCI_LAYER_TAR_GZIP : OCI_LAYER_TAR, ...await placeBlob(destDir, layer, written) })
    }
    const configDescriptor = { mediaType: OCI_IMAGE_CONFIG, ...await placeBlob(destDir, config, written) }
    const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_IMAGE_MANIFEST, config: configDescriptor, layers }))
    const manifest = { mediaType: OCI_IMAGE_MANIFEST, ...await writeBlob(destDir, manifestBytes, written) }
    if (image.repoTags.length === 0) manifests.push(manifest)
    for (const repoTag of image.repoTags) {
      const { name, tag } = normalizeDockerReference(repoTag)
      manifests.push({ ...manifest, annotations: { [ANNOTATION_CONTAINERD_IMAGE_NAME]: name, [ANNOTATION_REF_NAME]: tag } })
    }
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_IMAGE_INDEX, manifests }))
  await writeLayoutFile(join(destDir, OCI_INDEX_FILE_NAME), index)
  written.set(OCI_INDEX_FILE_NAME, sha256Hex(index))
  await writeLayoutFile(join(destDir, OCI_LAYOUT_FILE_NAME), OCI_LAYOUT_FILE_BYTES)
  written.set(OCI_LAYOUT_FILE_NAME, sha256Hex(OCI_LAYOUT_FILE_BYTES))
  return written
}

async function readDockerSaveManifest (files: ReadonlyMap<string, ArchiveFile>, signal: AbortSignal | undefined): Promise<DockerSaveImage[]> {
  const fail = (message: string, options?: ErrorOptions): Error => new ArchiveUnsupportedError(message, options)
  const what = `docker save ${DOCKER_SAVE_MANIFEST}`
  const { value } = await readJsonDocument(lookup(files, DOCKER_SAVE_MANIFEST).location, { what, fail, maxBytes: MAX_DOCKER_SAVE_JSON_BYTES, signal })
  if (!Array.isArray(value) || value.length === 0) throw fail(`${what} is not a non-empty array of images`)
  return value.map((item: unknown, i): DockerSaveImage => {
    if (!isRecord(item)) throw fail(`${what} [${i}] is not an object`)
    const { Config, RepoTags, Layers } = item
    if (typeof Config !== 'string') throw fail(`${what} [${i}] has no Config path`)
    if (!isStringArray(Layers)) throw fail(`${what} [${i}] has no Layers array of paths`)
    if (RepoTags !== null && RepoTags !== undefined && !isStringArray(RepoTags)) throw fail(`${what} [${i}] RepoTags is not an array of strings`)
    return { config: Config, repoTags: RepoTags ?? [], layers: Layers }
  })
}

async function readDiffIds (config: ArchiveFile, path: string, signal: AbortSignal | undefined): Promise<string[]> {
  const fail = (message: string, options?: ErrorOptions): Error => new ArchiveUnsupportedError(message, options)
  const what = `docker save image config ${path}`
  const { value } = await readJsonDocument(config.location, { what, fail, maxBytes: MAX_DOCKER_SAVE_JSON_BYTES, signal })
  const rootfs = isRecord(value) ? value.rootfs : undefined
  const diffIds = isRecord(rootfs) ? rootfs.diff_ids : undefined
  if (!isStringArray(diffIds)) throw fail(`${what} has no rootfs.diff_ids array`)
  return diffIds
}

/** manifest.json paths are archive paths: same safety rules and spelling as tar entries. */
function lookup (files: ReadonlyMap<string, ArchiveFile>, archivePath: string): ArchiveFile {
  const file = files.get(normalizeEntryPath(archivePath))
  if (file === undefined) throw new ArchiveUnsupportedError(`docker save ${DOCKER_SAVE_MANIFEST} names ${JSON.stringify(archivePath)} but the archive has no such file; re-export the image`)
  return file
}

/** Moves an extracted file to its blob name (a rename: a layer is never copied). */
async function placeBlob (destDir: string, file: ArchiveFile, written: Map<string, string>): Promise<{ digest: string, size: number }> {
  const target = blobPath(destDir, file.sha256)
  if (!written.has(blobRelPath(file.sha256))) {
    // Two archive files with the same bytes: the first one placed serves both.
    if (file.location !== target && !await exists(target)) await rename(file.location, target)
    file.location = target
    written.set(blobRelPath(file.sha256), file.sha256)
  }
  return { digest: `sha256:${file.sha256}`, size: file.size }
}

async function writeBlob (destDir: string, bytes: Buffer, written: Map<string, string>): Promise<{ digest: string, size: number }> {
  const hex = sha256Hex(bytes)
  if (!written.has(blobRelPath(hex))) {
    await writeLayoutFile(blobPath(destDir, hex), bytes)
    written.set(blobRelPath(hex), hex)
  }
  return { digest: `sha256:${hex}`, size: bytes.length }
}

async function writeLayoutFile (path: string, bytes: Buffer): Promise<void> {
  await writeFile(path, bytes)
  await chmod(path, LAYOUT_FILE_MODE)
}

async function exists (path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}

function isStringArray (value: unknown): value is string[] {
  return Array.isArray(value) && value.every(item => typeof item === 'string')
}
