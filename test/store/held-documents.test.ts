import { chmod, rm, writeFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { sha256Hex } from '../../src/hash/index.js'
import { ingestBlobBytes, openStore } from '../../src/store/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const tempDir = useTempDirs()

describe('documents held whole in the store, by sha256', () => {
  it('gives a held object\'s size and a small one\'s bytes, checked against the sha256', async () => {
    const store = await openStore({ dir: await tempDir() })
    try {
      const bytes = Buffer.from('{"schemaVersion":2,"layers":[]}')
      const sha256 = sha256Hex(bytes)
      const blob = await ingestBlobBytes(store, bytes, { sha256 })
      expect(await store.wholeObjectBySha256(sha256)).toEqual({ hash: blob.object, size: bytes.byteLength })
      expect(await store.readDocument(sha256, 1024)).toEqual(bytes)
      expect(await store.readSmallObject(blob.object, 1024)).toEqual(bytes)
      // Over the limit: not read at all.
      expect(await store.readDocument(sha256, bytes.byteLength - 1)).toBeUndefined()
      expect(await store.readSmallObject(blob.object, bytes.byteLength - 1)).toBeUndefined()
      const unknown = sha256Hex(Buffer.from('never stored'))
      expect(await store.wholeObjectBySha256(unknown)).toBeUndefined()
      expect(await store.readDocument(unknown, 1024)).toBeUndefined()
    } finally {
      await store.close()
    }
  })

  it('refuses a document whose bytes no longer hash to its sha256', async () => {
    const store = await openStore({ dir: await tempDir() })
    try {
      const bytes = Buffer.from('{"mediaType":"application/vnd.oci.image.index.v1+json"}')
      const sha256 = sha256Hex(bytes)
      const blob = await ingestBlobBytes(store, bytes, { sha256 })
      const damaged = Buffer.from(bytes)
      damaged[0] = 0x5b
      await chmod(store.objectPath(blob.object), 0o600)
      await writeFile(store.objectPath(blob.object), damaged)
      expect(await store.readDocument(sha256, 1024)).toBeUndefined()
      expect(await store.readSmallObject(blob.object, 1024)).toEqual(damaged)
    } finally {
      await store.close()
    }
  })

  it('takes an indexed object whose file is gone for absent, without throwing', async () => {
    const store = await openStore({ dir: await tempDir() })
    try {
      const bytes = Buffer.from('a config blob')
      const sha256 = sha256Hex(bytes)
      const blob = await ingestBlobBytes(store, bytes, { sha256 })
      await rm(store.objectPath(blob.object))
      expect(await store.objectBySha256(sha256)).toBe(blob.object)
      expect(await store.wholeObjectBySha256(sha256)).toBeUndefined()
      expect(await store.readDocument(sha256, 1024)).toBeUndefined()
      expect(await store.readSmallObject(blob.object, 1024)).toBeUndefined()
    } finally {
      await store.close()
    }
  })
})
