// The image a run distributes: generated (deterministic, `--size`) or given
// (`--bundle` directory or archive), always ending up as an OCI image layout, plus
// the byte-for-byte check of what a node received against it.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir, readFile, rm, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { generateImages, GENERATED_REF_NAME } from '../gen-images.js'
import { run } from './proc.js'

export interface SourceBundle {
  /** An OCI image layout directory. */
  layout: string
  /** The tag inside the layout (`oci:LAYOUT:REF`), when index.json names one. */
  ref: string | undefined
  /** Every file of the layout together: what a node has to receive. */
  bytes: number
  /** The blobs an image pull moves: digest → size. */
  blobs: Map<string, number>
  /** Digest of the top-level manifest or index. */
  rootDigest: string
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'])
const REF_NAME = 'org.opencontainers.image.ref.name'

/** Generates app1 of the fixture set with a base layer of `sizeBytes` under workDir. */
export async function generateSource (workDir: string, sizeBytes: number, signal?: AbortSignal): Promise<SourceBundle> {
  const dir = join(workDir, 'images')
  const { layouts } = await generateImages(dir, { baseBytes: sizeBytes, signal })
  // Only app1 is used; the other layouts would hold three more copies of the base layer.
  for (const [name, layout] of Object.entries(layouts)) if (name !== 'app1') await rm(layout, { recursive: true, force: true })
  const layout = layouts.app1
  if (layout === undefined) throw new Error('generateImages wrote no app1')
  return await describeLayout(layout, GENERATED_REF_NAME)
}

/** Uses a layout directory as it is; converts an archive (oci-archive or docker-archive) with skopeo. */
export async function sourceFromPath (path: string, workDir: string, signal?: AbortSignal): Promise<SourceBundle> {
  const full = resolve(path)
  const info = await stat(full)
  if (info.isDirectory()) return await describeLayout(full, undefined)
  const { stdout } = await run(['tar', '-tf', full], { signal })
  const entries = new Set(stdout.split('\n').map(line => line.replace(/^\.\//, '')))
  const transport = entries.has('oci-layout') ? 'oci-archive' : entries.has('manifest.json') ? 'docker-archive' : undefined
  if (transport === undefined) throw new Error(`${path} is neither an OCI layout directory nor an oci-archive or docker-archive tar`)
  const layout = join(workDir, 'source')
  await rm(layout, { recursive: true, force: true })
  await run(['skopeo', 'copy', '--quiet', `${transport}:${full}`, `oci:${layout}:${GENERATED_REF_NAME}`], { signal })
  return await describeLayout(layout, GENERATED_REF_NAME)
}

interface Descriptor { mediaType?: string, digest: string, size: number, annotations?: Record<string, string> }
interface ManifestLike { mediaType?: string, manifests?: Descriptor[], config?: Descriptor, layers?: Descriptor[] }

/** Reads a layout: its tag, its size, and every blob its image (or index) references. */
export async function describeLayout (layout: string, preferredRef: string | undefined): Promise<SourceBundle> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as ManifestLike
  const manifests = index.manifests ?? []
  const chosen = manifests.find(m => preferredRef !== undefined && m.annotations?.[REF_NAME] === preferredRef) ?? manifests[0]
  if (chosen === undefined) throw new Error(`${layout}/index.json lists no manifest`)
  if (manifests.length > 1 && chosen.annotations?.[REF_NAME] === undefined) {
    throw new Error(`${layout} holds ${manifests.length} images and the first has no ref name: give a layout with one image`)
  }
  const blobs = new Map<string, number>()
  await collectBlobs(layout, chosen, blobs)
  return { layout, ref: chosen.annotations?.[REF_NAME], bytes: await treeBytes(layout), blobs, rootDigest: chosen.digest }
}

async function collectBlobs (layout: string, descriptor: Descriptor, out: Map<string, number>): Promise<void> {
  out.set(descriptor.digest, descriptor.size)
  const isManifest = descriptor.mediaType === undefined || descriptor.mediaType.endsWith('+json') || descriptor.mediaType.includes('manifest')
  if (!isManifest || descriptor.mediaType?.includes('config') === true) return
  const parsed = JSON.parse(await readFile(blobPath(layout, descriptor.digest), 'utf8')) as ManifestLike
  if (INDEX_TYPES.has(descriptor.mediaType ?? parsed.mediaType ?? '') || parsed.manifests !== undefined) {
    for (const child of parsed.manifests ?? []) await collectBlobs(layout, child, out)
    return
  }
  if (parsed.config !== undefined) out.set(parsed.config.digest, parsed.config.size)
  for (const layer of parsed.layers ?? []) out.set(layer.digest, layer.size)
}

export function blobPath (layout: string, digest: string): string {
  const [algorithm, hex] = digest.split(':')
  if (algorithm === undefined || hex === undefined || !/^[a-z0-9]+$/.test(algorithm) || !/^[a-f0-9]+$/.test(hex)) throw new Error(`bad digest ${digest}`)
  return join(layout, 'blobs', algorithm, hex)
}

export async function treeBytes (dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) total += await treeBytes(path)
    else total += (await stat(path)).size
  }
  return total
}

async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return `sha256:${hash.digest('hex')}`
}

/**
 * Checks a received layout against the source: the same top-level manifest, and every
 * blob of the source present with the right size and sha256. Returns the problems
 * (empty when the copy is exact).
 */
export async function compareWithSource (source: SourceBundle, received: string): Promise<string[]> {
  const problems: string[] = []
  let index: ManifestLike
  try {
    index = JSON.parse(await readFile(join(received, 'index.json'), 'utf8')) as ManifestLike
  } catch (err) {
    return [`no readable index.json in ${received}: ${(err as Error).message}`]
  }
  const digests = (index.manifests ?? []).map(m => m.digest)
  if (!digests.includes(source.rootDigest)) problems.push(`index.json names ${digests.join(', ') || 'nothing'}, not the source's ${source.rootDigest}`)
  for (const [digest, size] of source.blobs) {
    const path = blobPath(received, digest)
    try {
      const info = await stat(path)
      if (info.size !== size) { problems.push(`${digest}: ${info.size} bytes, expected ${size}`); continue }
      const actual = await sha256File(path)
      if (actual !== digest) problems.push(`${digest}: content hashes to ${actual}`)
    } catch {
      problems.push(`${digest}: missing`)
    }
  }
  return problems
}
