import { afterEach, describe, expect, it, vi } from 'vitest'
import { openStore } from '../../src/store/index.js'
import { createPeerKey } from '../../src/swarm/index.js'
import { signRefRecord, verifyRefRecord } from '../../src/swarm/ref-record.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const tempDir = useTempDirs()
const REF = 'registry.example.com/team/app:1.0'

describe('a signed ref record', () => {
  afterEach(() => { vi.restoreAllMocks() })

  it('arriving from two neighbours at once lands once in the ref\'s history', async () => {
    const store = await openStore({ dir: await tempDir(), fsync: false })
    try {
      const key = await createPeerKey()
      const record = await verifyRefRecord((await signRefRecord(key, { ref: REF, bundleId: 'a'.repeat(64), sequence: 1 })).signed)
      // Each arrival is stamped with its own time, as two deliveries a moment apart are.
      let clock = Date.now()
      vi.spyOn(Date, 'now').mockImplementation(() => ++clock)
      const outcomes = await Promise.all([store.acceptRefRecord(record), store.acceptRefRecord(record)])
      expect(outcomes.sort()).toEqual(['accepted', 'stale'])
      expect((await store.revisions(REF)).map(r => r.bundleId)).toEqual(['a'.repeat(64)])
    } finally {
      await store.close()
    }
  })
})
