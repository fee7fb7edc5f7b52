import {
  bundleIdOf, CHUNK_SIZE_BYTES, createBundleManifest, directoryChecksum, encodeBundleManifest,
  type BundleManifest, type ManifestEntry,
} from '../manifest/index.js'
import {
  ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME, LAYOUT_DIR_MODE, LAYOUT_FILE_MODE, OCI_IMAGE_INDEX, OCI_LAYOUT_FILE_BYTES,
} from '../oci/index.js'
import { ingestBlobBytes } from './blob-upload.js'
import { FOLDED_IN_USE_GRACE_MS } from './constants.js'
import { ObjectCorruptError, StoreError } from './errors.js'
import { normalizeImageName, splitImageName } from './image-name.js'
import { ingestFile } from './ingest.js'
import type { Store } from './store.js'
import type { RefRevision } from './types.js'

/** One blob of an image, already a complete object in the store. */
export interface ImageBlob {
  /** Lowercase hex, without `sha256:`. */
  sha256: string
  object: string
  size: number
}

export interface ImageBundleOptions {
  /** Full image name with its tag: `registry.example.com/team/app:1.0`. */
  ref: string
  /** The descriptor index.json gets: the manifest or index that was pushed. */
  manifest: { mediaType: string, digest: string, size: number }
  /** Every blob of the image: the manifest itself, child manifests, configs, layers. */
  blobs: ImageBlob[]
  /**
   * Chunk tables the caller already has (computed when the blobs were uploaded). Objects
   * over one chunk that are not here are read once more to compute theirs.
   */
  chunkTables?: Pick<ReadonlyMap<string, string[]>, 'get'>
  /**
   * The tag is what the fleet said (see RefTarget.local): the ref is set local, and not at all
   * when a trusted publisher's record already names it — that record is the fleet's word.
   */
  local?: boolean
  signal?: AbortSignal
}

export interface ImageBundleResult {
  bundleId: string
  bundle: BundleManifest
  /** The ref set, or undefined when a local image left a trusted publisher's record in place. */
  revision: RefRevision | undefined
  /** False when an identical bundle was already stored (only the ref moved). */
  created: boolean
}

const FILE_PERMS = LAYOUT_FILE_MODE.toString(8)
const DIR_PERMS = LAYOUT_DIR_MODE.toString(8)

/**
 * Records a pushed image as a bundle that is an OCI image layout (`oci-layout`, `index.json`
 * with one descriptor annotated with the image name and tag, `blobs/sha256/…`), so it travels
 * and exports like a pushed directory, and points the ref at it. Every blob must already be a
 * complete object: only index.json and oci-layout are new bytes.
 */
export async function commitImageBundle (store: Store, options: ImageBundleOptions): Promise<ImageBundleResult> {
  const ref = normalizeImageName(options.ref)
  const blobs = [...new Map(options.blobs.map(b => [b.sha256, b])).values()]
  // The blobs are here (leased), but a bundle past the quota would only be evicted, or evict everything else.
  store.requireWithinQuota(blobs.reduce((sum, b) => sum + b.size, 0), `image ${ref}`)
  for (const blob of blobs) {
    if (!await store.hasObject(blob.object)) throw new StoreError('OBJECT_MISSING', `blob sha256:${blob.sha256} (object ${blob.object}) is not in the store; push it first`)
  }
  const index = await ingestBlobBytes(store, indexJsonOf(ref, options.manifest), { signal: options.signal })
  const layout = await ingestBlobBytes(store, OCI_LAYOUT_FILE_BYTES, { signal: options.signal })
  const entries = layoutEntries(blobs, index, layout)
  const chunkTables = await chunkTablesOf(store, entries, options)
  const bundle = createBundleManifest(entries, chunkTables)
  const encoded = encodeBundleManifest(bundle)
  const bundleId = bundleIdOf(encoded)
  const local = options.local === true
  const revision: RefRevision = { ref, bundleId, manifestDigest: options.manifest.digest, at: Date.now(), ...(local ? { local } : {}) }
  const created = await store.bundleRecord(bundleId) === undefined
  // A local ref is set apart, under the ref's lock (Store.setRef), not in the bundle's batch: a
  // trusted record for the tag can arrive while the bundle is written, and it must stay.
  if (created) await store.commitBundle(bundleId, encoded, bundle, local ? [] : [revision])
  const set = created && !local ? true : await store.setRef(revision)
  return { bundleId, bundle, revision: set ? revision : undefined, created }
}

/**
 * Makes a bundle of one blob (a tree holding only `blobs/sha256/<hex>`, no refs), so the swarm
 * can move an object that no image bundle names yet: what a node pulled through for the fleet
 * before the image it belongs to is whole. The object must be complete here. Returns the
 * existing bundle's ID when the same one was made before.
 */
export async function commitBlobBundle (store: Store, blob: ImageBlob, options: { signal?: AbortSignal } = {}): Promise<{ bundleId: string, created: boolean }> {
  if (!await store.hasObject(blob.object)) throw new StoreError('OBJECT_MISSING', `blob sha256:${blob.sha256} (object ${blob.object}) is not in the store`)
  const file: ManifestEntry = { type: 'F', perms: FILE_PERMS, checksum: blob.object, size: blob.size, path: `./blobs/sha256/${blob.sha256}` }
  const directory = (path: string, child: ManifestEntry): ManifestEntry => ({ type: 'D', perms: DIR_PERMS, checksum: directoryChecksum([child.checksum]), size: child.size, path })
  const sha256Dir = directory('./blobs/sha256/', file)
  const blobsDir = directory('./blobs/', sha256Dir)
  const entries = [directory('./', blobsDir), blobsDir, sha256Dir, file]
  const bundle = createBundleManifest(entries, await chunkTablesOf(store, entries, { signal: options.signal }))
  const encoded = encodeBundleManifest(bundle)
  const bundleId = bundleIdOf(encoded)
  const created = await store.bundleRecord(bundleId) === undefined
  if (created) await store.commitBundle(bundleId, encoded, bundle, [])
  return { bundleId, created }
}

/**
 * Removes the one-blob bundles (commitBlobBundle) whose blob `imageBundleId` now holds whole:
 * they were only there to move that blob before its image was a bundle, and `shoal ls` lists
 * images, not their pieces. Only the bundle records go: the objects stay, named by the image's
 * bundle, so a client reading a blob (HTTP reads the object's file, peers ask chunks by object)
 * loses nothing; a folded bundle that was in use (store.useBundle: a registry client read it
 * lately, an export) makes the image's bundle in use for FOLDED_IN_USE_GRACE_MS, so the quota
 * spares the objects as it would have. Pinned bundles are kept: the operator asked for those.
 * Returns the IDs removed.
 */
export async function foldBlobBundles (store: Store, imageBundleId: string): Promise<string[]> {
  const image = await store.loadBundle(imageBundleId)
  if (image === undefined) return []
  const removed: string[] = []
  // Only bundles naming one of the image's objects can be folded into it (the store's index).
  const candidates = new Set<string>()
  for (const object of image.objectSizes.keys()) for (const id of await store.bundlesNaming(object)) candidates.add(id)
  for (const id of candidates) {
    if (id === imageBundleId) continue
    const loaded = await store.loadBundle(id)
    if (loaded === undefined || !isBlobBundle(loaded.manifest)) continue
    const [object] = loaded.objectSizes.keys()
    if (object === undefined || !image.objectSizes.has(object) || !await store.hasObject(object)) continue
    if ((await store.bundleRecord(id))?.pinned === true) continue
    const inUse = store.isBundleInUse(id)
    try {
      await store.removeBundleRecord(id)
      removed.push(id)
      if (inUse) store.useBundle(imageBundleId, { graceMs: FOLDED_IN_USE_GRACE_MS })()
    } catch (err) {
      // Removed meanwhile (gc, `shoal rm`): what we wanted.
      if ((err as { code?: unknown }).code !== 'BUNDLE_NOT_FOUND') throw err
    }
  }
  return removed
}

/** Whether a bundle is one commitBlobBundle makes: a single blob and nothing else. */
export function isBlobBundle (bundle: BundleManifest): boolean {
  const files = bundle.entries.filter(e => e.type === 'F')
  return files.length === 1 && bundle.entries.length === 4 && /^\.\/blobs\/sha256\/[0-9a-f]{64}$/.test(files[0]?.path ?? '')
}

/** index.json as skopeo and `ctr image export` write it, one image, named both ways containerd and OCI tools read. */
function indexJsonOf (ref: string, manifest: ImageBundleOptions['manifest']): Buffer {
  const annotations = { [ANNOTATION_CONTAINERD_IMAGE_NAME]: ref, [ANNOTATION_REF_NAME]: splitImageName(ref).tag }
  const descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, annotations }
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_IMAGE_INDEX, manifests: [descriptor] }))
}

/** The snapdir entries of the layout, directories computed by snapdir's rule from their children. */
function layoutEntries (blobs: ImageBlob[], index: { object: string, size: number }, layout: { object: string, size: number }): ManifestEntry[] {
  const file = (path: string, object: { object: string, size: number }): ManifestEntry => ({ type: 'F', perms: FILE_PERMS, checksum: object.object, size: object.size, path })
  const directory = (path: string, children: ManifestEntry[]): ManifestEntry => ({
    type: 'D',
    perms: DIR_PERMS,
    checksum: directoryChecksum(children.map(c => c.checksum)),
    size: children.reduce((sum, c) => sum + c.size, 0),
    path,
  })
  const blobFiles = blobs.map(b => file(`./blobs/sha256/${b.sha256}`, b))
  const sha256Dir = directory('./blobs/sha256/', blobFiles)
  const blobsDir = directory('./blobs/', [sha256Dir])
  const indexFile = file('./index.json', index)
  const layoutFile = file('./oci-layout', layout)
  return [directory('./', [blobsDir, indexFile, layoutFile]), blobsDir, sha256Dir, ...blobFiles, indexFile, layoutFile]
}

/**
 * The chunk table of every object over one chunk: the caller's when it has one, the store's when
 * a pull verified it here, otherwise read from the object, which is checked against its name on
 * the way.
 */
async function chunkTablesOf (store: Store, entries: ManifestEntry[], options: Pick<ImageBundleOptions, 'chunkTables' | 'signal'>): Promise<Map<string, string[]>> {
  const tables = new Map<string, string[]>()
  for (const entry of entries) {
    if (entry.type !== 'F' || entry.size <= CHUNK_SIZE_BYTES || tables.has(entry.checksum)) continue
    // A table the caller has, or one a pull verified chunk by chunk here (a 512 MiB layer read
    // back and hashed twice was ~2 CPU-s of an edge's, beside containerd still reading it).
    const known = options.chunkTables?.get(entry.checksum) ?? store.verifiedChunkTable(entry.checksum)
    if (known !== undefined) {
      tables.set(entry.checksum, known)
      continue
    }
    const hashed = await ingestFile(store.objectPath(entry.checksum), { signal: options.signal })
    if (hashed.checksum !== entry.checksum) throw new ObjectCorruptError(entry.checksum, hashed.checksum)
    tables.set(entry.checksum, hashed.chunkHashes ?? [])
  }
  return tables
}
