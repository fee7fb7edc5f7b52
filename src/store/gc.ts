import { readdir, rmdir, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { StoreLayout } from './layout.js'
import type { Metadata } from './metadata.js'
import type { BundleSummary } from './types.js'

/**
 * What gc and the quota use of a store. Declared here, not taken from store.ts: the store calls
 * the quota to make room for a pull (Store.makeRoom), so the two files would import each other.
 */
export interface GcStore {
  readonly layout: Pick<StoreLayout, 'objects'>
  readonly meta: Pick<Metadata, 'partialObjects' | 'batch' | 'sha256Entries' | 'dropSha256'>
  readonly quotaBytes: number | undefined
  bundleIds: () => Promise<string[]>
  requireBundle: (id: string) => Promise<{ objectSizes: ReadonlyMap<string, number> }>
  listBundles: () => Promise<BundleSummary[]>
  isEvictable: (bundle: Pick<BundleSummary, 'id' | 'pinned'>) => boolean
  isLeased: (hash: string) => boolean
  hasObject: (hash: string) => Promise<boolean>
  forgetObject: (hash: string) => void
  removePartial: (hash: string) => Promise<void>
  removeBundleRecord: (id: string) => Promise<void>
}

export interface GcResult {
  removedObjects: number
  freedBytes: number
  removedPartials: number
}

/**
 * Mark and sweep: every object no bundle names goes, and so do partial objects and sha256
 * index entries. Reachability is recomputed from the manifests each time, so no counter can
 * drift out of step after a crash.
 */
export async function collectGarbage (store: GcStore, options: { signal?: AbortSignal } = {}): Promise<GcResult> {
  const referenced = await referencedObjects(store)
  const result: GcResult = { removedObjects: 0, freedBytes: 0, removedPartials: 0 }
  for await (const { hash, path } of objectFiles(store.layout.objects)) {
    options.signal?.throwIfAborted()
    if (referenced.has(hash) || store.isLeased(hash)) continue
    result.freedBytes += (await stat(path)).size
    store.forgetObject(hash)
    await unlink(path)
    result.removedObjects++
  }
  await pruneEmptyDirectories(store.layout.objects)
  for (const hash of await store.meta.partialObjects()) {
    if (referenced.has(hash)) continue
    await store.removePartial(hash)
    result.removedPartials++
  }
  const batch = store.meta.batch()
  for (const [sha256, object] of await store.meta.sha256Entries()) {
    if (!referenced.has(object) && !store.isLeased(object)) store.meta.dropSha256(batch, sha256)
  }
  await batch.write()
  return result
}

async function referencedObjects (store: GcStore): Promise<Set<string>> {
  const referenced = new Set<string>()
  for (const id of await store.bundleIds()) {
    for (const hash of (await store.requireBundle(id)).objectSizes.keys()) referenced.add(hash)
  }
  return referenced
}

/**
 * Bytes the quota holds against the store: every complete object but those in flight — leased
 * and named by no bundle yet (blobs of a registry push or a pull-through whose image is not
 * whole). Evicting bundles cannot free those, so counting them made the quota evict every
 * bundle, the newest too, and still not fit.
 */
async function quotaCountedBytes (store: GcStore): Promise<number> {
  const referenced = await referencedObjects(store)
  let total = 0
  for await (const { hash, path } of objectFiles(store.layout.objects)) {
    if (!referenced.has(hash) && store.isLeased(hash)) continue
    total += (await stat(path)).size
  }
  return total
}

/** Bytes of all complete objects. */
export async function objectBytes (store: GcStore): Promise<number> {
  let total = 0
  for await (const { path } of objectFiles(store.layout.objects)) total += (await stat(path)).size
  return total
}

/**
 * Keeps objects under the store's quota by removing the least recently used bundles and
 * collecting their objects. Never evicted: a pinned bundle, `protect` (the one just added),
 * one in use (`store.useBundle`: a client reading it, a pull writing it), and an incomplete
 * one (a pull under way, perhaps from a registry request; `shoal rm` drops an abandoned one).
 * Objects in flight (leased, named by no bundle) are not counted. So the store stays within
 * the quota plus what is in flight. `incomingBytes`: as if that much more were held (what a
 * pull is about to fetch), so the room it needs is made before it starts.
 */
export async function enforceQuota (store: GcStore, options: { protect?: string, incomingBytes?: number, signal?: AbortSignal } = {}): Promise<string[]> {
  return await underQuotaLock(store, async () => await evictOverQuota(store, options))
}

const quotaRuns = new WeakMap<GcStore, Promise<unknown>>()

/**
 * Runs `fn` when no other quota work on this store is under way: the quota keeper and a pull
 * making room (Store.requireRoomForBundle) would otherwise pick the same victim and collect
 * the same objects twice, or count the room while the other's victim is half collected.
 */
export async function underQuotaLock<T> (store: GcStore, fn: () => Promise<T>): Promise<T> {
  const previous = quotaRuns.get(store) ?? Promise.resolve()
  const run = previous.then(fn)
  quotaRuns.set(store, run.catch(() => {}))
  return await run
}

/** enforceQuota's work, for a caller that holds the quota lock (underQuotaLock). */
export async function evictOverQuota (store: GcStore, options: { protect?: string, incomingBytes?: number, signal?: AbortSignal }): Promise<string[]> {
  const quota = store.quotaBytes
  if (quota === undefined) return []
  const evicted: string[] = []
  while (await quotaCountedBytes(store) + (options.incomingBytes ?? 0) > quota) {
    options.signal?.throwIfAborted()
    const victim = (await evictionOrder(store, options.protect))[0]
    if (victim === undefined) break
    await store.removeBundleRecord(victim)
    await collectGarbage(store, options)
    evicted.push(victim)
  }
  return evicted
}

/**
 * Bytes enforceQuota would free from the disk once `incomingBytes` more are held (what a pull
 * of `protect` still lacks): the same victims in the same order, counted, nothing removed. An
 * object goes with the last bundle that names it, so one the pulled bundle shares stays.
 */
export async function quotaWouldFree (store: GcStore, incomingBytes: number, options: { protect?: string } = {}): Promise<number> {
  const quota = store.quotaBytes
  if (quota === undefined) return 0
  let excess = await quotaCountedBytes(store) + incomingBytes - quota
  if (excess <= 0) return 0
  const namedBy = new Map<string, number>()
  for (const id of await store.bundleIds()) {
    for (const hash of (await store.requireBundle(id)).objectSizes.keys()) namedBy.set(hash, (namedBy.get(hash) ?? 0) + 1)
  }
  let freed = 0
  for (const victim of await evictionOrder(store, options.protect)) {
    if (excess <= 0) break
    for (const [hash, size] of (await store.requireBundle(victim)).objectSizes) {
      const left = (namedBy.get(hash) ?? 1) - 1
      namedBy.set(hash, left)
      if (left > 0 || store.isLeased(hash) || !await store.hasObject(hash)) continue
      freed += size
      excess -= size
    }
  }
  return freed
}

/** The bundles the quota may evict, least recently used first (never `protect`). */
async function evictionOrder (store: GcStore, protect: string | undefined): Promise<string[]> {
  const candidates = (await store.listBundles()).filter(b => b.complete && b.id !== protect && store.isEvictable(b))
  return candidates.sort((a, b) => a.lastUsedAt - b.lastUsedAt).map(b => b.id)
}

async function * objectFiles (root: string): AsyncGenerator<{ hash: string, path: string }> {
  for (const a of await listDir(root)) {
    for (const b of await listDir(join(root, a))) {
      for (const c of await listDir(join(root, a, b))) {
        for (const d of await listDir(join(root, a, b, c))) yield { hash: a + b + c + d, path: join(root, a, b, c, d) }
      }
    }
  }
}

async function listDir (path: string): Promise<string[]> {
  try {
    return await readdir(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

async function pruneEmptyDirectories (root: string): Promise<void> {
  for (const a of await listDir(root)) {
    for (const b of await listDir(join(root, a))) {
      for (const c of await listDir(join(root, a, b))) await rmdir(join(root, a, b, c)).catch(() => undefined)
      await rmdir(join(root, a, b)).catch(() => undefined)
    }
    await rmdir(join(root, a)).catch(() => undefined)
  }
}
