import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openStore, pushTree, type HeardRefBounds, type Store, type StoreEvents } from '../../src/store/index.js'
import { createPeerKey, peerIdOfKey } from '../../src/swarm/index.js'
import { signRefRecord, verifyRefRecord } from '../../src/swarm/ref-record.js'
import type { PrivateKey } from '@libp2p/interface'
import { useTempDirs } from '../helpers/temp-dir.js'

const tempDir = useTempDirs()
const ID_A = 'a'.repeat(64)

async function record (key: PrivateKey, ref: string, sequence: number, bundleId = ID_A): ReturnType<typeof verifyRefRecord> {
  return await verifyRefRecord((await signRefRecord(key, { ref, bundleId, sequence })).signed)
}

function evictions (store: Store): Array<StoreEvents['ref:evicted']> {
  const seen: Array<StoreEvents['ref:evicted']> = []
  store.on('ref:evicted', e => { seen.push(e) })
  return seen
}

async function withStore (run: (store: Store) => Promise<void>): Promise<void> {
  const store = await openStore({ dir: await tempDir(), fsync: false })
  try {
    await run(store)
  } finally {
    await store.close()
  }
}

describe('refs heard from other publishers', () => {
  it('are kept up to a bound per publisher, the oldest evicted first with its record and history, and counted', async () => {
    await withStore(async (store) => {
      const self = await createPeerKey()
      const other = await createPeerKey()
      const bounds: HeardRefBounds = { self: peerIdOfKey(self), maxPerPublisher: 3, maxTotal: 100 }
      const evicted = evictions(store)
      // Signed out of order: the sequence, not the arrival, says which is oldest.
      for (const sequence of [5, 1, 4, 2, 3]) expect(await store.acceptRefRecord(await record(other, `heard:${sequence}`, sequence), bounds)).toBe('accepted')
      expect((await store.refNames()).sort()).toEqual(['heard:3', 'heard:4', 'heard:5'])
      expect(await store.refRecords()).toHaveLength(3)
      expect(await store.revisions('heard:1')).toEqual([])
      expect(evicted.map(e => [e.ref, e.why])).toEqual([['heard:1', 'publisher'], ['heard:2', 'publisher']])
      expect(store.heardRefsEvicted).toBe(2)
      // This node's own refs are neither counted nor evicted.
      for (let i = 1; i <= 5; i++) await store.acceptRefRecord(await record(self, `own:${i}`, i), bounds)
      expect((await store.refNames()).filter(n => n.startsWith('own:'))).toHaveLength(5)
      expect(store.heardRefsEvicted).toBe(2)
    })
  })

  it('past a bound go down to a 64th below it, so a publisher past its bound does not pay a sort per record', async () => {
    await withStore(async (store) => {
      const other = await createPeerKey()
      const bounds: HeardRefBounds = { self: peerIdOfKey(await createPeerKey()), maxPerPublisher: 128, maxTotal: 1000 }
      for (let i = 1; i <= 129; i++) await store.acceptRefRecord(await record(other, `heard:${i}`, i), bounds)
      expect(store.heardRefsEvicted).toBe(3)
      expect(await store.refNames()).toHaveLength(126)
      // The next two fit again without an eviction.
      for (let i = 130; i <= 131; i++) await store.acceptRefRecord(await record(other, `heard:${i}`, i), bounds)
      expect(store.heardRefsEvicted).toBe(3)
    })
  })

  it('are kept up to a bound for all publishers together, the oldest of all evicted first', async () => {
    await withStore(async (store) => {
      const [p, q] = [await createPeerKey(), await createPeerKey()]
      const bounds: HeardRefBounds = { self: peerIdOfKey(await createPeerKey()), maxPerPublisher: 10, maxTotal: 4 }
      const evicted = evictions(store)
      await store.acceptRefRecord(await record(p, 'p:1', 1), bounds)
      await store.acceptRefRecord(await record(q, 'q:2', 2), bounds)
      await store.acceptRefRecord(await record(p, 'p:3', 3), bounds)
      await store.acceptRefRecord(await record(q, 'q:4', 4), bounds)
      await store.acceptRefRecord(await record(q, 'q:5', 5), bounds)
      await store.acceptRefRecord(await record(p, 'p:6', 6), bounds)
      expect((await store.refNames()).sort()).toEqual(['p:3', 'p:6', 'q:4', 'q:5'])
      expect(evicted.map(e => [e.ref, e.why])).toEqual([['p:1', 'total'], ['q:2', 'total']])
    })
  })

  it('never evict a ref whose bundle is held here or named by a preheat record (they count, and are passed over)', async () => {
    await withStore(async (store) => {
      const other = await createPeerKey()
      const bounds: HeardRefBounds = { self: peerIdOfKey(await createPeerKey()), maxPerPublisher: 3, maxTotal: 100 }
      const tree = await tempDir()
      await mkdir(join(tree, 'd'), { recursive: true })
      await writeFile(join(tree, 'd', 'f'), 'held here')
      const { bundleId: held } = await pushTree(store, tree)
      const preheated = 'c'.repeat(64)
      await store.acceptPreheatRecord({ bundleId: preheated, sequence: 1, cancelled: false, signed: Uint8Array.from([1]) })
      await store.acceptRefRecord(await record(other, 'held', 1, held), bounds)
      await store.acceptRefRecord(await record(other, 'preheated', 2, preheated), bounds)
      for (let i = 3; i <= 5; i++) await store.acceptRefRecord(await record(other, `heard:${i}`, i), bounds)
      expect((await store.refNames()).sort()).toEqual(['heard:5', 'held', 'preheated'])
    })
  })

  it('keep the newest revisions of a ref\'s history, a node\'s own refs all of theirs', async () => {
    await withStore(async (store) => {
      const self = await createPeerKey()
      const other = await createPeerKey()
      const bounds: HeardRefBounds = { self: peerIdOfKey(self), maxPerPublisher: 10, maxTotal: 100 }
      const moves = 70
      for (let i = 1; i <= moves; i++) {
        const bundleId = i.toString(16).padStart(64, '0')
        await store.acceptRefRecord(await record(other, 'heard', i, bundleId), bounds)
        await store.acceptRefRecord(await record(self, 'own', i, bundleId), bounds)
      }
      const heard = await store.revisions('heard')
      expect(heard).toHaveLength(64)
      expect(heard.at(-1)?.bundleId).toBe(moves.toString(16).padStart(64, '0'))
      expect(heard[0]?.bundleId).toBe((moves - 63).toString(16).padStart(64, '0'))
      expect(await store.revisions('own')).toHaveLength(moves)
    })
  })
})
