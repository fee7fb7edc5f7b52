import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { MAX_DESCRIPTOR_DEPTH, MAX_JSON_DOCUMENT_BYTES } from './constants.js'
import { isRecord } from './descriptor.js'
import { BLOB_DIR, blobPath, blobRelPath, isSha256Hex } from './digest.js'
import {
  OciBlobDigestMismatchError, OciBlobMissingError, OciBlobSizeMismatchError,
  OciInvalidIndexError, OciInvalidLayoutError, OciInvalidManifestError,
} from './errors.js'
import { readJsonDocument } from './json-document.js'
import { checkOciLayoutFile, readLayoutIndex } from './layout.js'
import { walkImage } from './image-walk.js'
import { manifestDocumentOf, withHex, type ImageReference, type ManifestDocument } from './manifest-document.js'
import { OCI_IMAGE_INDEX, OCI_INDEX_FILE_NAME, isIndexMediaType, isManifestMediaType } from './media-types.js'
import { sha256File } from './sha256-file.js'

export interface ValidateLayoutOptions {
  signal?: AbortSignal
  /**
   * sha256 (lowercase hex, no `sha256:` prefix) of files the caller already hashed,
   * keyed by layout-relative path (`blobs/sha256/<hex>`): the store hashes while it
   * copies, and re-reading a multi-GiB layer only to hash it again is wasted I/O.
   */
  knownSha256?: ReadonlyMap<string, string>
  /**
   * Accept an image index whose per-platform manifests are partly absent.
   * `ctr image export` without `--all-platforms` writes such layouts (the index
   * plus the local platform's manifest only); the image then works on the
   * platforms present only. Off by default: a partial image is refused.
   */
  allowMissingPlatforms?: boolean
}

export interface LayoutReport {
  /** Files under blobs/sha256/, all of which hash to their names. */
  blobCount: number
  blobBytes: number
  /** Digests of blobs that no descriptor reachable from index.json names (legal, but dead weight). */
  unreferenced: string[]
  /** With `allowMissingPlatforms`: manifests an image index names that are not in the layout. */
  missingPlatformManifests: string[]
}

interface WalkState {
  dir: string
  blobSizes: Map<string, number>
  /** Blobs already visited (and, for JSON documents, already hashed). */
  visited: Set<string>
  hashed: Set<string>
  missingPlatformManifests: string[]
  allowMissingPlatforms: boolean
  /** Each document walked as messages name it: `index.json`, `image index sha256:…`, `manifest sha256:…`. */
  names: Map<ManifestDocument, string>
  signal: AbortSignal | undefined
}

/**
 * Checks a whole OCI image layout: `oci-layout`, index.json, every descriptor
 * reachable from it (nested indexes, manifests, configs, layers) present with
 * the right size and digest, and every file under blobs/sha256/ hashing to its
 * name. Cheap structural checks run first so a missing blob is reported in
 * milliseconds; hashing every blob comes last. Throws the first problem found
 * (an `OciError`).
 */
export async function validateLayout (dir: string, options: ValidateLayoutOptions = {}): Promise<LayoutReport> {
  const { signal } = options
  await checkOciLayoutFile(dir, { signal })
  const index = await readLayoutIndex(dir, { signal })
  // index.json is the walk's root, an index of the layout's images.
  const root: ManifestDocument = { mediaType: OCI_IMAGE_INDEX, kind: 'index', references: index.manifests.map(withHex) }
  const state: WalkState = {
    dir, blobSizes: await listBlobs(dir), visited: new Set(), hashed: new Set(), missingPlatformManifests: [], allowMissingPlatforms: options.allowMissingPlatforms === true, names: new Map([[root, OCI_INDEX_FILE_NAME]]), signal,
  }
  await walkImage(root, async (reference, { parent, depth, position }) => {
    const field = parent.kind === 'index' ? `manifests[${position}]` : position === 0 ? 'config' : `layers[${position - 1}]`
    return await visit(state, reference, `${state.names.get(parent) ?? ''} ${field}`, depth, parent.kind === 'index')
    // visit refuses an index nested too deep, naming where; index.json is one level more here than in a registry's walk.
  }, { maxDepth: MAX_DESCRIPTOR_DEPTH + 1, signal })
  await verifyBlobDigests(state, options.knownSha256)
  let blobBytes = 0
  for (const size of state.blobSizes.values()) blobBytes += size
  const unreferenced = [...state.blobSizes.keys()].filter(hex => !state.visited.has(hex)).sort().map(hex => `sha256:${hex}`)
  return { blobCount: state.blobSizes.size, blobBytes, unreferenced, missingPlatformManifests: state.missingPlatformManifests }
}

/** Sizes of the files under blobs/sha256/, keyed by hex name. */
async function listBlobs (dir: string): Promise<Map<string, number>> {
  const sizes = new Map<string, number>()
  const topEntries = await readdir(join(dir, 'blobs'), { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    // A layout with no blobs at all is legal (an empty index); descriptors will report what is missing.
    if (err.code === 'ENOENT') return []
    throw err
  })
  for (const entry of topEntries) {
    if (entry.name !== 'sha256' || !entry.isDirectory()) {
      throw new OciInvalidLayoutError(`blobs/${entry.name} in ${dir} is not supported: shoal stores only sha256 blobs in blobs/sha256/; re-export the image with sha256 digests or remove it`)
    }
  }
  if (topEntries.length === 0) return sizes
  for (const entry of await readdir(join(dir, BLOB_DIR), { withFileTypes: true })) {
    const rel = `${BLOB_DIR}/${entry.name}`
    // Symlinks are refused rather than followed: a blob must be the bytes themselves.
    if (!entry.isFile()) throw new OciInvalidLayoutError(`${rel} in ${dir} is not a regular file; a blob must be a plain file named by its digest`)
    if (!isSha256Hex(entry.name)) throw new OciInvalidLayoutError(`${rel} in ${dir} is not named by a sha256 digest (64 lowercase hex digits); remove or rename it`)
    sizes.set(entry.name, (await stat(join(dir, rel))).size)
  }
  return sizes
}

/**
 * Checks one descriptor is present (a platform's manifest may be allowed absent) at its size; an
 * index's child index or manifest is read for the walk to go into, once. Leaves' digests are checked last.
 */
async function visit (state: WalkState, descriptor: ImageReference, referencedBy: string, depth: number, fromIndex: boolean): Promise<ManifestDocument | undefined> {
  const size = state.blobSizes.get(descriptor.hex)
  if (size === undefined && fromIndex && descriptor.platform !== undefined) {
    if (state.allowMissingPlatforms) {
      state.missingPlatformManifests.push(descriptor.digest)
      return undefined
    }
    const { os, architecture, variant } = descriptor.platform
    const platform = [os, architecture, variant].filter(part => part !== undefined).join('/')
    throw new OciBlobMissingError(descriptor.digest, `${referencedBy} (platform ${platform})`, {
      hint: 'only some platforms of this multi-platform image were exported: re-export all of them (e.g. `ctr image export --all-platforms`)',
    })
  }
  if (size === undefined) throw new OciBlobMissingError(descriptor.digest, referencedBy)
  if (size !== descriptor.size) throw new OciBlobSizeMismatchError(descriptor.digest, referencedBy, descriptor.size, size)
  if (state.visited.has(descriptor.hex)) return undefined
  state.visited.add(descriptor.hex)
  if (!fromIndex) return undefined
  if (isIndexMediaType(descriptor.mediaType)) {
    if (depth >= MAX_DESCRIPTOR_DEPTH) throw new OciInvalidIndexError(`image indexes nest deeper than ${MAX_DESCRIPTOR_DEPTH} levels at ${referencedBy}; this is not a normal image`)
    return await readDocument(state, descriptor, referencedBy, 'image index', (message, opts) => new OciInvalidIndexError(message, opts))
  }
  if (isManifestMediaType(descriptor.mediaType)) return await readDocument(state, descriptor, referencedBy, 'manifest', (message, opts) => new OciInvalidManifestError(message, opts))
  return undefined
}

/**
 * Reads an index or manifest blob and checks its digest before parsing it: what
 * it says is only trusted once its bytes are known to be the ones named.
 */
async function readDocument (state: WalkState, descriptor: ImageReference, referencedBy: string, kind: string, fail: (message: string, options?: ErrorOptions) => Error): Promise<ManifestDocument> {
  const what = `${descriptor.mediaType} ${descriptor.digest} (referenced by ${referencedBy})`
  if (descriptor.size > MAX_JSON_DOCUMENT_BYTES) throw fail(`${what} is ${descriptor.size} bytes, over shoal's ${MAX_JSON_DOCUMENT_BYTES}-byte limit for JSON documents`)
  const { sha256, value } = await readJsonDocument(blobPath(state.dir, descriptor.hex), { what, fail, signal: state.signal })
  if (sha256 !== descriptor.hex) throw new OciBlobDigestMismatchError(blobRelPath(descriptor.hex), descriptor.digest, `sha256:${sha256}`)
  state.hashed.add(descriptor.hex)
  if (!isRecord(value)) throw fail(`${what} is not a JSON object`)
  // image-spec manifest.md / image-index.md: when present, mediaType must match the descriptor's.
  if (value.mediaType !== undefined && value.mediaType !== descriptor.mediaType) {
    throw fail(`${what} says its mediaType is ${JSON.stringify(value.mediaType)}; the descriptor and the document disagree: export the image again`)
  }
  const where = `${kind} ${descriptor.digest}`
  const document = manifestDocumentOf(value, descriptor.mediaType, where, fail)
  state.names.set(document, where)
  return document
}

async function verifyBlobDigests (state: WalkState, knownSha256: ReadonlyMap<string, string> | undefined): Promise<void> {
  for (const hex of [...state.blobSizes.keys()].sort()) {
    if (state.hashed.has(hex)) continue
    const rel = blobRelPath(hex)
    const actual = knownSha256?.get(rel) ?? (await sha256File(join(state.dir, rel), { signal: state.signal })).hex
    if (actual !== hex) throw new OciBlobDigestMismatchError(rel, `sha256:${hex}`, `sha256:${actual}`)
  }
}
