import { platformMatches, type Platform } from '../labels/index.js'
import { MAX_DESCRIPTOR_DEPTH, MAX_JSON_DOCUMENT_BYTES, OCI_INDEX_FILE_NAME, isIndexMediaType } from '../oci/index.js'
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
  const read = async (object: string): Promise<Record<string, unknown> | undefined> => {
    await swarm.pull(bundleId, { signal: options.signal, objects: new Set([object]), background: true })
    return await readDocument(store, object)
  }
  let filtered = false
  let images = 0
  const walk = async (document: Record<string, unknown> | undefined, depth: number): Promise<void> => {
    // image-spec: an index may nest indexes; deeper than this is not an image anyone builds.
    if (document === undefined || depth > MAX_DESCRIPTOR_DEPTH) return
    for (const child of descriptors(document.manifests)) {
      const object = blobs.get(child.digest)
      if (object === undefined) continue
      if (child.platform !== undefined && !platformMatches(child.platform, platform)) {
        filtered = true
        continue
      }
      wanted.add(object)
      const childDocument = await read(object)
      if (isIndexMediaType(child.mediaType) || Array.isArray(childDocument?.manifests)) {
        await walk(childDocument, depth + 1)
        continue
      }
      images++
      for (const part of [...descriptors([childDocument?.config]), ...descriptors(childDocument?.layers)]) {
        const partObject = blobs.get(part.digest)
        if (partObject !== undefined) wanted.add(partObject)
      }
    }
  }
  await walk(await read(index), 0)
  // Nothing was left out, or nothing matched (the index names no platform this node runs): the whole bundle.
  if (!filtered || images === 0) return undefined
  return wanted
}

interface Child { mediaType: string, digest: string, platform?: Platform }

/** The descriptors of a `manifests`/`layers` array (or `[config]`), skipping what is not one. */
function descriptors (value: unknown): Child[] {
  if (!Array.isArray(value)) return []
  const out: Child[] = []
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) continue
    const { mediaType, digest, platform } = item as Record<string, unknown>
    if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) continue
    const child: Child = { mediaType: typeof mediaType === 'string' ? mediaType : '', digest: digest.slice('sha256:'.length) }
    if (typeof platform === 'object' && platform !== null) {
      const { os, architecture, variant } = platform as Record<string, unknown>
      if (typeof os === 'string' && typeof architecture === 'string') child.platform = { os, architecture, ...(typeof variant === 'string' ? { variant } : {}) }
    }
    out.push(child)
  }
  return out
}

async function readDocument (store: Store, object: string): Promise<Record<string, unknown> | undefined> {
  // The object was verified when it completed; the bound keeps a hostile index from costing memory.
  const bytes = await store.readSmallObject(object, MAX_JSON_DOCUMENT_BYTES)
  if (bytes === undefined) return undefined
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as unknown
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}
