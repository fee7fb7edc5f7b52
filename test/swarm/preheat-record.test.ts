import { describe, expect, it } from 'vitest'
import { ALL_NODES, parsePlatform, parseSelector } from '../../src/labels/index.js'
import { MAX_PREHEAT_RECORDS, openStore } from '../../src/store/index.js'
import { createPeerKey, peerIdOfKey, signPreheatRecord, verifyPreheatRecord, PreheatRecordError } from '../../src/swarm/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const tempDir = useTempDirs()
const ID = 'a'.repeat(64)

function id (i: number): string {
  return i.toString(16).padStart(64, '0')
}

describe('signed preheat records', () => {
  it('verify with their selector, platform and cancel flag, and name their publisher', async () => {
    const key = await createPeerKey()
    const signed = await signPreheatRecord(key, { bundleId: ID, ref: 'registry.example.com/app:1.0', selector: parseSelector('site=a,arch=amd64'), platform: parsePlatform('linux/arm/v7'), cancelled: false }, 7)
    const verified = await verifyPreheatRecord(signed.signed)
    expect(verified).toMatchObject({
      bundleId: ID, ref: 'registry.example.com/app:1.0', selector: parseSelector('arch=amd64,site=a'),
      platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, cancelled: false, sequence: 7, publisher: peerIdOfKey(key),
    })
  })

  it('refuse changed bytes and garbage with PREHEAT_RECORD_INVALID', async () => {
    const key = await createPeerKey()
    const signed = await signPreheatRecord(key, { bundleId: ID, selector: ALL_NODES, cancelled: false })
    const tampered = Buffer.from(signed.signed)
    const at = tampered.indexOf(Buffer.from(ID, 'hex'))
    tampered[at] = (tampered[at] ?? 0) ^ 0xff
    await expect(verifyPreheatRecord(tampered)).rejects.toThrow(PreheatRecordError)
    await expect(verifyPreheatRecord(Buffer.from('not a record'))).rejects.toMatchObject({ code: 'PREHEAT_RECORD_INVALID' })
    await expect(verifyPreheatRecord(new Uint8Array(5000))).rejects.toThrow(/larger than 4096 bytes/)
  })
})

describe('preheat records in the store', () => {
  it('keep the newest per bundle, so a replayed record never undoes a cancel, and survive a reopen', async () => {
    const key = await createPeerKey()
    const dir = await tempDir()
    let store = await openStore({ dir })
    try {
      const want = await signPreheatRecord(key, { bundleId: ID, selector: ALL_NODES, cancelled: false }, 100)
      const cancel = await signPreheatRecord(key, { bundleId: ID, selector: ALL_NODES, cancelled: true }, 200)
      expect(await store.acceptPreheatRecord(want)).toBe('accepted')
      expect(await store.acceptPreheatRecord(cancel)).toBe('accepted')
      expect(await store.acceptPreheatRecord(want)).toBe('stale')
      expect(await store.releasePreheat(ID)).toBe(true)
      await store.close()
      store = await openStore({ dir })
      const held = await store.preheatRecords()
      expect(held).toHaveLength(1)
      expect((await verifyPreheatRecord(held[0]!)).cancelled).toBe(true)
      expect(await store.isPreheatReleased(ID)).toBe(true)
      // A newer record asks again: released no more.
      expect(await store.acceptPreheatRecord(await signPreheatRecord(key, { bundleId: ID, selector: ALL_NODES, cancelled: false }, 300))).toBe('accepted')
      expect(await store.isPreheatReleased(ID)).toBe(false)
    } finally {
      await store.close()
    }
  })

  it('hold at most MAX_PREHEAT_RECORDS: a cancelled record makes room, live ones are never dropped', async () => {
    const key = await createPeerKey()
    const store = await openStore({ dir: await tempDir() })
    try {
      for (let i = 0; i < MAX_PREHEAT_RECORDS; i++) {
        expect(await store.acceptPreheatRecord(await signPreheatRecord(key, { bundleId: id(i), selector: ALL_NODES, cancelled: i === 3 }, 1000 + i))).toBe('accepted')
      }
      const extra = await signPreheatRecord(key, { bundleId: id(MAX_PREHEAT_RECORDS), selector: ALL_NODES, cancelled: false }, 5000)
      expect(await store.acceptPreheatRecord(extra)).toBe('accepted')
      const ids = await Promise.all((await store.preheatRecords()).map(async s => (await verifyPreheatRecord(s)).bundleId))
      expect(ids).toHaveLength(MAX_PREHEAT_RECORDS)
      expect(ids).not.toContain(id(3))
      expect(ids).toContain(id(MAX_PREHEAT_RECORDS))
      // Full of live records: the next new bundle is refused, nothing held is dropped.
      expect(await store.acceptPreheatRecord(await signPreheatRecord(key, { bundleId: id(MAX_PREHEAT_RECORDS + 1), selector: ALL_NODES, cancelled: false }, 6000))).toBe('full')
      expect(await store.preheatRecords()).toHaveLength(MAX_PREHEAT_RECORDS)
    } finally {
      await store.close()
    }
  })
})
