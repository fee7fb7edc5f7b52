import { platformMatches, type Platform } from '../labels/index.js'
import { MAX_JSON_DOCUMENT_BYTES, OCI_INDEX_FILE_NAME, isIndexMediaType, parseManifestDocument, walkImage, type ManifestDocument } from '../oci/index.js'
import type { Store } from '../store/index.js'
import type { Swarm } from '../swarm/index.js'

const BLOB_PATH = /^\.\/blobs\/sha256\/([0-9a-f]{64})$/

/**
 * The objects of a bundle that one platform needs, when the bundle is an OCI image layout:
 * everything outside `blobs/` (index.json, oci-layout), every index on the way, and of the image
 * manifests only those whose platform matches (with their config and layers). The documents are
 * fetched as they are read — through the swarm, verified like any object — so an edge of one
 * platform never fetches another's layers. `undefined` means "all of it": no platform given, not
 * an image layout, or no manifest names a platform (a single-platform image).
 */
export async function platformObjects (
  { store, swarm }: { store: Store, swarm: Swarm },
  bundleId: string,
  platform: Platform | undefined,
  options: { signal: AbortSignal },
): Promise<ReadonlySet<string> | undefined> {
  if (platform === undefined) return undefined
  // The bundle manifest first (a pull of no objects fetches just that).
  if (await store.getBundle(bundleId) === undefined) await swarm.pull(bundleId, { signal: options.signal, objects: new Set(), background: true })
  const bundle = await store.requireBundle(bundleId)
  const blobs = new Map<string, string>()
  const wanted = new Set<string>()
  let index: string | undefined
  for (const entry of bundle.manifest.entries) {
    if (entry.type !== 'F') continue
    const blob = BLOB_PATH.exec(entry.path)?.[1]
    if (blob !== undefined) blobs.set(blob, entry.checksum)
    else wanted.add(entry.checksum)
    if (entry.path === `./${OCI_INDEX_FILE_NAME}`) index = entry.checksum
  }
  if (index === undefined) return undefined
  /** A document of the bundle, fetched through the swarm; undefined when it is not one we can read (skipped, as if not named). */
  const read = async (object: string, what: string): Promise<ManifestDocument | undefined> => {
    await swarm.pull(bundleId, { signal: options.signal, objects: new Set([object]), background: true })
    // The object was verified when it completed; the bound keeps a hostile index from costing memory.
    const bytes = await store.readSmallObject(object, MAX_JSON_DOCUMENT_BYTES)
    if (bytes === undefined) return undefined
    try {
      return parseManifestDocument(bytes, { what, fail: message => new Error(message) })
    } catch {
      return undefined
    }
  }
  const root = await read(index, OCI_INDEX_FILE_NAME)
  if (root === undefined) return undefined
  let filtered = false
  let images = 0
  await walkImage(root, async (reference, { parent }) => {
    const object = blobs.get(reference.hex)
    if (object === undefined) return undefined
    if (parent.kind === 'manifest') {
      wanted.add(object)
      return undefined
    }
    if (reference.platform !== undefined && !platformMatches(reference.platform, platform)) {
      filtered = true
      return undefined
    }
    wanted.add(object)
    const child = await read(object, `manifest ${reference.digest}`)
    // A child that cannot be read counts by what its descriptor says it is.
    if ((child?.kind ?? (isIndexMediaType(reference.mediaType) ? 'index' : 'manifest')) === 'manifest') images++
    return child
  }, { signal: options.signal })
  // Nothing was left out, or nothing matched (the index names no platform this node runs): the whole bundle.
  if (!filtered || images === 0) return undefined
  return wanted
}
