import type { Store } from '../store/index.js'
import { tagPrefixOf, type RepositoryName } from './names.js'

/** A bundle that names an object, and the object's size by its manifest. */
export interface ObjectHolder {
  bundleId: string
  size: number
}

/**
 * A bundle whose manifest names `object`, so a blob source can be asked for it: first the
 * bundles the repository's tags point at (the likely one), then any other. Bundles are
 * few on a node, and their manifests are cached by the store.
 */
export async function bundleHolding (store: Store, object: string, name: RepositoryName): Promise<ObjectHolder | undefined> {
  const prefix = tagPrefixOf(name)
  const preferred: string[] = []
  for (const ref of await store.refNames()) {
    if (!ref.startsWith(prefix)) continue
    const target = await store.getRef(ref)
    if (target !== undefined) preferred.push(target.bundleId)
  }
  const candidates = new Set([...preferred, ...await store.bundleIds()])
  for (const bundleId of candidates) {
    const size = (await store.loadBundle(bundleId))?.objectSizes.get(object)
    if (size !== undefined) return { bundleId, size }
  }
  return undefined
}
