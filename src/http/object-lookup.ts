import type { Store } from '../store/index.js'
import { REGISTRY_READ_GRACE_MS } from './constants.js'
import { tagPrefixOf, type RepositoryName } from './names.js'

/** A bundle that names an object, and the object's size by its manifest. */
export interface ObjectHolder {
  bundleId: string
  size: number
}

/**
 * A bundle whose manifest names `object`, so a blob source can be asked for it, and the object's
 * size: first one the repository's tags point at (the likely one), then any other, from the
 * store's index of which bundles name an object and how big it is (`objectNamed`: no manifest
 * decoded per request). The store's lookups go out together, not one after
 * another: each is a trip through libuv's thread pool and back to an event loop that, on an
 * edge receiving a layer, is busy with chunks (one after another, and twice per request, they
 * once took 290–470 ms before containerd's first layer byte in bench-containerd at load ~17;
 * 15–55 ms in another run).
 */
export async function bundleHolding (store: Store, object: string, name: RepositoryName): Promise<ObjectHolder | undefined> {
  const prefix = tagPrefixOf(name)
  const [refs, named] = await Promise.all([store.refNames(), store.objectNamed(object)])
  if (named === undefined) return undefined
  const targets = await Promise.all(refs.filter(ref => ref.startsWith(prefix)).map(async ref => await store.getRef(ref)))
  const bundleId = targets.find(target => target !== undefined && named.bundles.includes(target.bundleId))?.bundleId ?? named.bundles[0]
  if (bundleId === undefined) return undefined
  // Bundles that disagree on its size: the one picked says, as for any of its objects.
  const size = named.size ?? (await store.loadBundle(bundleId))?.objectSizes.get(object)
  return size === undefined ? undefined : { bundleId, size }
}

/**
 * Marks the bundle a registry client reads `object` from as in use, until the returned
 * function is called and `REGISTRY_READ_GRACE_MS` after (the client's next request is for
 * another object of the same image). `bundleId` when the caller knows it (a tag's bundle),
 * taken only when it names the object: a bundle a peer named for a tag that turned out not to
 * hold its manifest is not what the client reads (and, marked, it was kept from being removed).
 */
export async function useForReading (store: Store, object: string, name: RepositoryName, bundleId?: string): Promise<() => void> {
  const named = bundleId !== undefined && (await store.bundlesNaming(object)).includes(bundleId)
  const id = named ? bundleId : (await bundleHolding(store, object, name))?.bundleId
  if (id === undefined) return () => {}
  return store.useBundle(id, { graceMs: REGISTRY_READ_GRACE_MS })
}
