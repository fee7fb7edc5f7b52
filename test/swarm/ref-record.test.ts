import { describe, expect, it } from 'vitest'
import { openStore } from '../../src/store/index.js'
import { createPeerKey, peerIdOfKey } from '../../src/swarm/index.js'
import { signRefRecord, verifyRefRecord, RefRecordError } from '../../src/swarm/ref-record.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const tempDir = useTempDirs()
const ID_A = 'a'.repeat(64)
const ID_B = 'b'.repeat(64)
const REF = 'registry.example.com/team/app:1.0'

describe('signed ref records', () => {
  it('verify and name their publisher by peer ID', async () => {
    const key = await createPeerKey()
    const signed = await signRefRecord(key, { ref: REF, bundleId: ID_A, manifestDigest: 'sha256:' + '1'.repeat(64), sequence: 5 })
    const verified = await verifyRefRecord(signed.signed)
    expect(verified).toMatchObject({ ref: REF, bundleId: ID_A, sequence: 5, publisher: peerIdOfKey(key) })
  })

  it('refuse a record whose bytes were changed after signing', async () => {
    const key = await createPeerKey()
    const signed = await signRefRecord(key, { ref: REF, bundleId: ID_A })
    const tampered = Buffer.from(signed.signed)
    const at = tampered.indexOf(Buffer.from(ID_A, 'hex'))
    tampered[at] = (tampered[at] ?? 0) ^ 0xff
    await expect(verifyRefRecord(tampered)).rejects.toThrow(RefRecordError)
    await expect(verifyRefRecord(Buffer.from('not a record'))).rejects.toThrow(RefRecordError)
  })

  it('never let a replayed older record roll a tag back', async () => {
    const key = await createPeerKey()
    const store = await openStore({ dir: await tempDir() })
    try {
      const older = await verifyRefRecord((await signRefRecord(key, { ref: REF, bundleId: ID_A, sequence: 100 })).signed)
      const newer = await verifyRefRecord((await signRefRecord(key, { ref: REF, bundleId: ID_B, sequence: 200 })).signed)
      expect(await store.acceptRefRecord(older)).toBe('accepted')
      expect(await store.acceptRefRecord(newer)).toBe('accepted')
      expect(await store.acceptRefRecord(older)).toBe('stale')
      expect((await store.getRef(REF))?.bundleId).toBe(ID_B)
      expect((await store.revisions(REF)).map(r => r.bundleId)).toEqual([ID_A, ID_B])
      expect(await store.refRecords()).toHaveLength(1)
    } finally {
      await store.close()
    }
  })
})
