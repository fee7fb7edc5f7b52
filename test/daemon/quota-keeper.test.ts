import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createLogger } from '../../src/daemon/logger.js'
import { createQuotaKeeper } from '../../src/daemon/quota-keeper.js'
import { openStore, pushTree, type Store } from '../../src/store/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const KIB = 1024

describe('the quota keeper', () => {
  const tempDir = useTempDirs()
  const closing: Array<() => Promise<void>> = []
  afterEach(async () => {
    vi.useRealTimers()
    for (const close of closing.splice(0).reverse()) await close()
  })

  async function storeWith (quotaBytes: number): Promise<{ store: Store, id: string }> {
    const store = await openStore({ dir: await tempDir(), quotaBytes, fsync: false })
    closing.push(async () => { await store.close() })
    const tree = await tempDir()
    await writeFile(join(tree, 'a.bin'), randomBytes(200 * KIB))
    return { store, id: (await pushTree(store, tree)).bundleId }
  }

  function removed (store: Store, id: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`bundle ${id} was not evicted`)) }, 20_000)
      store.on('bundle:removed', detail => { if (detail.id === id) { clearTimeout(timer); resolve() } })
    })
  }

  it('looks again when a registry reader\'s grace ends, so a store left over its quota by it does not stay so until the next write', async () => {
    const { store, id } = await storeWith(100 * KIB)
    const gone = removed(store, id)
    // Only Date and the keeper's timer are faked; fs and LevelDB run as they do.
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] })
    store.useBundle(id, { graceMs: 60_000 })()
    const keeper = createQuotaKeeper(store, createLogger('error'))
    closing.push(keeper.close)
    // The first run spares the bundle (its grace); then only the grace's end can wake the keeper.
    await keeper.settled()
    expect(await store.bundleIds()).toEqual([id])
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(60_001)
    await gone
    expect(await store.bundleIds()).toEqual([])
  })

  it('looks again when the last user of a bundle lets it go (an export stream ends)', async () => {
    const { store, id } = await storeWith(100 * KIB)
    const release = store.useBundle(id)
    const keeper = createQuotaKeeper(store, createLogger('error'))
    closing.push(keeper.close)
    const gone = removed(store, id)
    await keeper.settled()
    expect(await store.bundleIds()).toEqual([id])
    release()
    await gone
    expect(await store.bundleIds()).toEqual([])
  })
})
