import { describe, expect, it } from 'vitest'
import { collectGarbage, ingestBlobBytes, openStore } from '../../src/store/index.js'
import { sha256Hex } from '../../src/hash/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const tempDir = useTempDirs()

describe('gc and registry uploads', () => {
  it('keeps a blob uploaded for a push whose manifest has not arrived yet', async () => {
    const store = await openStore({ dir: await tempDir() })
    try {
      const bytes = Buffer.from('a layer pushed before its manifest')
      const blob = await ingestBlobBytes(store, bytes, { sha256: sha256Hex(bytes) })
      const result = await collectGarbage(store)
      expect(result.removedObjects).toBe(0)
      expect(await store.hasObject(blob.object)).toBe(true)
      expect(await store.objectBySha256(sha256Hex(bytes))).toBe(blob.object)
    } finally {
      await store.close()
    }
  })

  it('collects an unreferenced object once its lease is over', async () => {
    const store = await openStore({ dir: await tempDir() })
    try {
      const bytes = Buffer.from('an abandoned upload')
      const blob = await ingestBlobBytes(store, bytes, { sha256: sha256Hex(bytes) })
      store.leaseObject(blob.object, -1)
      // leaseObject keeps the later expiry; a fresh store has no lease at all.
      await store.close()
      const reopened = await openStore({ dir: store.layout.root })
      try {
        expect((await collectGarbage(reopened)).removedObjects).toBe(1)
        expect(await reopened.hasObject(blob.object)).toBe(false)
      } finally {
        await reopened.close()
      }
    } catch (err) {
      await store.close().catch(() => undefined)
      throw err
    }
  })
})
