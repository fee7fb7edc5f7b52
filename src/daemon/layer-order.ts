import { MAX_MANIFEST_BYTES, parseManifestDocument } from '../http/index.js'
import { servedMediaType } from '../oci/index.js'
import type { Store } from '../store/index.js'

/**
 * The objects an image's manifest names, in its order (config, then the layers), for a pull to
 * fetch first (PullOptions.firstObjects; a pull already under way gets them through
 * swarm.prioritize, last to first, in blob-source.ts), before containerd asks for them. Without
 * it the bundle's pull, started when the client asked for the manifest, spent the time until
 * containerd asked for a layer on chunks in random order, and the layer's stream then waited for
 * its first chunks and for holes. A layer a client asks for still goes ahead of these. Empty
 * when the manifest is neither handed over nor whole here, or is an index (the client's
 * platform is not known yet).
 */
export async function imageObjectOrder (store: Store, manifestHex: string, handedOver?: Buffer): Promise<string[]> {
  // Bytes already checked against the digest (a manifest handed over by the fleet) are read as
  // they are: the store's write of them (~50 ms at load) is not waited for.
  const bytes = handedOver ?? await store.readDocument(manifestHex, MAX_MANIFEST_BYTES)
  if (bytes === undefined) return []
  let references
  try {
    const document = parseManifestDocument(bytes, servedMediaType(bytes))
    if (document.kind !== 'manifest') return []
    references = document.references
  } catch {
    return []
  }
  const objects: string[] = []
  for (const reference of references) {
    const named = await store.objectBySha256(reference.hex)
    if (named !== undefined && !objects.includes(named)) objects.push(named)
  }
  return objects
}
