import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { enforceQuota, objectBytes, openStore, pushTree, verifyStore, type Store } from '../../src/store/index.js'
import { listFiles } from '../helpers/store-snapshot.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const KIB = 1024

describe('store quota', () => {
  const tempDir = useTempDirs()
  const opened: Store[] = []
  afterEach(async () => {
    vi.useRealTimers()
    for (const store of opened.splice(0)) await store.close()
  })

  /** A store with bundles a, b, c (no shared bytes, `size` each), created at t=1000, 2000, 3000. */
  async function storeWithThree (quotaBytes: number | undefined, size = 200 * KIB): Promise<{ store: Store, ids: Record<'a' | 'b' | 'c', string>, bundleBytes: number }> {
    // Only Date is faked: last-use times come from Date.now(), and sleeping to order them would be flaky.
    vi.useFakeTimers({ toFake: ['Date'] })
    const store = await openStore({ dir: await tempDir(), quotaBytes })
    opened.push(store)
    const ids: Record<string, string> = {}
    for (const [i, name] of ['a', 'b', 'c'].entries()) {
      vi.setSystemTime(1000 * (i + 1))
      const tree = await tempDir()
      await writeFile(join(tree, `${name}.bin`), randomBytes(size))
      ids[name] = (await pushTree(store, tree)).bundleId
    }
    return { store, ids: ids as Record<'a' | 'b' | 'c', string>, bundleBytes: size }
  }

  async function remaining (store: Store): Promise<string[]> {
    return (await store.bundleIds()).sort()
  }

  it('evicts the least recently used bundles first, until the objects fit', async () => {
    const { store, ids, bundleBytes } = await storeWithThree(2 * 200 * KIB)
    // a is used after c: the order of last use is b, c, a.
    vi.setSystemTime(4000)
    await store.touch(ids.a)
    expect(await objectBytes(store)).toBe(3 * bundleBytes)

    expect(await enforceQuota(store)).toEqual([ids.b])
    expect(await remaining(store)).toEqual([ids.a, ids.c].sort())
    expect(await objectBytes(store)).toBe(2 * bundleBytes)
    expect(await listFiles(store.layout.objects)).toHaveLength(2)
    expect(await verifyStore(store)).toMatchObject({ ok: true, bundles: 2 })
    // Under quota now: nothing more goes.
    expect(await enforceQuota(store)).toEqual([])
  })

  it('never evicts a pinned bundle, even the least recently used one', async () => {
    const { store, ids, bundleBytes } = await storeWithThree(200 * KIB)
    await store.setPinned(ids.a, true)
    expect(await enforceQuota(store)).toEqual([ids.b, ids.c])
    expect(await remaining(store)).toEqual([ids.a])
    expect(await objectBytes(store)).toBe(bundleBytes)
  })

  it('stops over quota rather than evict a pinned bundle', async () => {
    const { store, ids } = await storeWithThree(10 * KIB)
    await store.setPinned(ids.b, true)
    await store.setPinned(ids.c, true)
    expect(await enforceQuota(store)).toEqual([ids.a])
    expect(await remaining(store)).toEqual([ids.b, ids.c].sort())
    expect(await objectBytes(store)).toBeGreaterThan(10 * KIB)
    expect(await verifyStore(store)).toMatchObject({ ok: true })
  })

  it('keeps the bundle it is told to protect (the one just added), though it is the oldest', async () => {
    const { store, ids } = await storeWithThree(200 * KIB)
    expect(await enforceQuota(store, { protect: ids.a })).toEqual([ids.b, ids.c])
    expect(await remaining(store)).toEqual([ids.a])
  })

  it('never evicts a bundle in use (being read or pulled), though it is the least recently used', async () => {
    const { store, ids } = await storeWithThree(200 * KIB)
    const release = store.useBundle(ids.a)
    expect(await enforceQuota(store)).toEqual([ids.b, ids.c])
    expect(await remaining(store)).toEqual([ids.a])
    release()
    release()
    expect(store.isBundleInUse(ids.a)).toBe(false)
  })

  it('keeps a bundle in use for the grace after its last reader, then lets the quota have it', async () => {
    // A quota below one bundle: whatever is not in use goes.
    const { store, ids } = await storeWithThree(100 * KIB)
    vi.setSystemTime(10_000)
    store.useBundle(ids.a, { graceMs: 5000 })()
    vi.setSystemTime(14_999)
    expect(store.isBundleInUse(ids.a)).toBe(true)
    expect(await enforceQuota(store)).toEqual([ids.b, ids.c])
    vi.setSystemTime(15_001)
    expect(store.isBundleInUse(ids.a)).toBe(false)
    expect(await enforceQuota(store)).toEqual([ids.a])
  })

  it('keeps objects another bundle still uses when it evicts one', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const store = await openStore({ dir: await tempDir(), quotaBytes: 300 * KIB })
    opened.push(store)
    const shared = randomBytes(200 * KIB)
    const ids: string[] = []
    for (const [i, name] of ['old', 'new'].entries()) {
      vi.setSystemTime(1000 * (i + 1))
      const tree = await tempDir()
      await writeFile(join(tree, 'shared.bin'), shared)
      await writeFile(join(tree, `${name}.bin`), randomBytes(100 * KIB))
      ids.push((await pushTree(store, tree)).bundleId)
    }
    expect(await objectBytes(store)).toBe(400 * KIB)
    expect(await enforceQuota(store)).toEqual([ids[0]])
    expect(await objectBytes(store)).toBe(300 * KIB)
    expect(await verifyStore(store)).toMatchObject({ ok: true, bundles: 1 })
  })

  it('does nothing without a quota', async () => {
    const { store } = await storeWithThree(undefined)
    expect(await enforceQuota(store)).toEqual([])
    expect(await store.bundleIds()).toHaveLength(3)
  })
})
