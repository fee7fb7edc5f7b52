import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CHUNK_SIZE_BYTES } from '../../src/manifest/index.js'
import { commitBlobBundle, ingestBlobBytes, openStore, pushTree, type Store } from '../../src/store/index.js'
import { b3sumOfFile } from '../helpers/independent-hashes.js'
import { useTempDirs } from '../helpers/temp-dir.js'

/**
 * An object a pull completed here from verified chunks is made part of a bundle with the chunk
 * table its chunks were verified against, not read back and hashed again: an edge whose image
 * was resolved by the fleet made the image a bundle right after its pull, and read the whole
 * layer back for it (a 512 MiB layer: ~2 CPU-s, beside containerd still reading it).
 */
describe('chunk tables a pull verified', () => {
  const tempDir = useTempDirs()
  const opened: Store[] = []
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close()
  })

  async function open (dir: string): Promise<Store> {
    const store = await openStore({ dir })
    opened.push(store)
    return store
  }

  /** A 4-chunk object pushed into a store of its own: the bundle's encoding, the object and its chunks. */
  async function source (): Promise<{ id: string, encoded: Uint8Array, hash: string, size: number, table: string[], chunks: Buffer[] }> {
    const tree = await tempDir()
    const bytes = randomBytes(3 * CHUNK_SIZE_BYTES + 100)
    await writeFile(join(tree, 'big.bin'), bytes)
    const store = await open(await tempDir())
    const { bundleId, bundle } = await pushTree(store, tree)
    const hash = await b3sumOfFile(join(tree, 'big.bin'))
    const chunks = [0, 1, 2, 3].map(i => bytes.subarray(i * CHUNK_SIZE_BYTES, (i + 1) * CHUNK_SIZE_BYTES))
    return { id: bundleId, encoded: (await store.getEncodedBundle(bundleId))!, hash, size: bytes.length, table: bundle.chunkTables.get(hash)!, chunks }
  }

  it('makes a bundle of an object a pull completed without reading the object back', async () => {
    const src = await source()
    const dir = await tempDir()
    const store = await open(dir)
    await store.addBundle(src.encoded, { expectedId: src.id })
    for (const index of [2, 0, 3, 1]) await store.writeChunk(src.id, src.hash, index, src.chunks[index]!)
    expect(store.verifiedChunkTable(src.hash)).toEqual(src.table)
    // The file is overwritten once complete, so that a read back would show (ObjectCorruptError).
    await writeFile(store.objectPath(src.hash), Buffer.alloc(src.size))
    const made = await commitBlobBundle(store, { sha256: 'a'.repeat(64), object: src.hash, size: src.size })
    expect((await store.loadBundle(made.bundleId))?.manifest.chunkTables.get(src.hash)).toEqual(src.table)
  })

  it('reads an object back when some of its chunks were stored before its file was opened again', async () => {
    const src = await source()
    const dir = await tempDir()
    const first = await open(dir)
    await first.addBundle(src.encoded, { expectedId: src.id })
    await first.writeChunk(src.id, src.hash, 0, src.chunks[0]!)
    opened.splice(opened.indexOf(first), 1)
    await first.close()
    const store = await open(dir)
    for (const index of [1, 2, 3]) await store.writeChunk(src.id, src.hash, index, src.chunks[index]!)
    expect(await store.objectState(src.hash)).toEqual({ state: 'complete' })
    // Chunk 0's entry is not known here: the table is computed from the file, which holds the object.
    expect(store.verifiedChunkTable(src.hash)).toBeUndefined()
    const made = await commitBlobBundle(store, { sha256: 'a'.repeat(64), object: src.hash, size: src.size })
    expect((await store.loadBundle(made.bundleId))?.manifest.chunkTables.get(src.hash)).toEqual(src.table)
  })

  it('makes a bundle of a blob staged and ingested here (a gateway\'s pull-through) without reading it back', async () => {
    const src = await source()
    const store = await open(await tempDir())
    const blob = await ingestBlobBytes(store, Buffer.concat(src.chunks))
    expect(blob.object).toBe(src.hash)
    expect(store.verifiedChunkTable(src.hash)).toEqual(src.table)
    // Overwritten once published, so that a read back would show (ObjectCorruptError).
    await writeFile(store.objectPath(src.hash), Buffer.alloc(src.size))
    const made = await commitBlobBundle(store, { sha256: blob.sha256, object: src.hash, size: src.size })
    expect((await store.loadBundle(made.bundleId))?.manifest.chunkTables.get(src.hash)).toEqual(src.table)
  })
})
