import type { Store } from '../store/index.js'
import { REGISTRY_READ_GRACE_MS } from './constants.js'
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

/**
 * Marks the bundle a registry client reads `object` from as in use, until the returned
 * function is called and `REGISTRY_READ_GRACE_MS` after (the client's next request is for
 * another object of the same image). `bundleId` when the caller knows it (a tag's bundle).
 */
export async function useForReading (store: Store, object: string, name: RepositoryName, bundleId?: string): Promise<() => void> {
  const id = bundleId ?? (await bundleHolding(store, object, name))?.bundleId
  if (id === undefined) return () => {}
  return store.useBundle(id, { graceMs: REGISTRY_READ_GRACE_MS })
}
