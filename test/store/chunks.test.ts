import { randomBytes } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { blake3Hex } from '../../src/hash/index.js'
import { bundleIdOf, CHUNK_SIZE_BYTES, createBundleManifest, decodeBundleManifest, encodeBundleManifest } from '../../src/manifest/index.js'
import { collectGarbage, exportTree, openStore, pushTree, verifyStore, type Store } from '../../src/store/index.js'
import { b3sumOfFile } from '../helpers/independent-hashes.js'
import { useTempDirs } from '../helpers/temp-dir.js'
import { treeManifest } from '../helpers/tree-manifest.js'

const MIB = 1024 * 1024

/** Buffer.equals: vitest's deep equality walks a MiB buffer byte by byte, which takes seconds. */
function expectSameBytes (actual: Uint8Array, expected: Uint8Array | undefined): void {
  expect(expected).toBeDefined()
  expect(actual.length).toBe(expected!.length)
  expect(Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(expected!)).toBe(true)
}

interface Source {
  tree: string
  id: string
  encoded: Uint8Array
  /** The 4-chunk object (3 MiB + 100 bytes) and its chunks' bytes. */
  big: { hash: string, chunks: Buffer[] }
  /** A single-chunk object. */
  small: { hash: string, bytes: Buffer }
}

// Both write paths: through the page cache, and O_DIRECT from aligned memory (direct-io.test.ts).
describe.each([false, true])('store chunk writes and reads (direct I/O %s)', (directIo) => {
  const tempDir = useTempDirs()
  const opened: Store[] = []
  // Registered after useTempDirs, so it runs first: stores close before their directories go.
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close()
  })

  async function open (dir: string): Promise<Store> {
    const store = await openStore({ dir, directIo })
    expect(store.directIo.on).toBe(directIo)
    opened.push(store)
    return store
  }

  async function close (store: Store): Promise<void> {
    opened.splice(opened.indexOf(store), 1)
    await store.close()
  }

  /** A bundle pushed into one store, to be fetched chunk by chunk into another. */
  async function source (): Promise<Source> {
    const tree = await tempDir()
    const bigBytes = randomBytes(3 * MIB + 100)
    const smallBytes = randomBytes(300 * 1024)
    await writeFile(join(tree, 'big.bin'), bigBytes)
    await writeFile(join(tree, 'small.bin'), smallBytes)
    await writeFile(join(tree, 'empty'), '')
    const store = await open(await tempDir())
    const { bundleId, bundle } = await pushTree(store, tree)
    const encoded = (await store.getEncodedBundle(bundleId))!
    await close(store)
    const bigHash = await b3sumOfFile(join(tree, 'big.bin'))
    expect(bundle.chunkTables.get(bigHash)).toHaveLength(4)
    const chunks = [0, 1, 2, 3].map(i => bigBytes.subarray(i * CHUNK_SIZE_BYTES, (i + 1) * CHUNK_SIZE_BYTES))
    return { tree, id: bundleId, encoded, big: { hash: bigHash, chunks }, small: { hash: await b3sumOfFile(join(tree, 'small.bin')), bytes: smallBytes } }
  }

  /** A store that holds the bundle manifest and none of its (non-empty) objects. */
  async function receiver (src: Source): Promise<{ store: Store, dir: string }> {
    const dir = await tempDir()
    const store = await open(dir)
    await store.addBundle(src.encoded, { expectedId: src.id })
    return { store, dir }
  }

  it('addBundle refuses bytes that do not hash to expectedId and records nothing', async () => {
    const src = await source()
    const store = await open(await tempDir())
    const wrongId = (src.id[0] === '0' ? '1' : '0') + src.id.slice(1)
    await expect(store.addBundle(src.encoded, { expectedId: wrongId })).rejects.toMatchObject({ name: 'BundleIdMismatchError', code: 'BUNDLE_ID_MISMATCH' })
    const tampered = Buffer.from(src.encoded)
    tampered.writeUInt8(tampered.readUInt8(tampered.length - 2) ^ 0x01, tampered.length - 2)
    await expect(store.addBundle(tampered, { expectedId: src.id })).rejects.toMatchObject({ code: 'BUNDLE_ID_MISMATCH' })
    expect(await store.bundleIds()).toEqual([])
    expect(await readdir(store.layout.objects)).toEqual([])

    const added = await store.addBundle(src.encoded, { expectedId: src.id })
    expect(added.id).toBe(src.id)
    const [summary] = await store.listBundles()
    expect(summary).toMatchObject({ id: src.id, complete: false, presentBytes: 0 })
  })

  it('a chunk that does not match the chunk table throws ChunkHashMismatchError and stores nothing', async () => {
    const src = await source()
    const { store } = await receiver(src)
    const flipped = Buffer.from(src.big.chunks[1]!)
    flipped.writeUInt8(flipped.readUInt8(12345) ^ 0x40, 12345)
    await expect(store.writeChunk(src.id, src.big.hash, 1, flipped)).rejects.toMatchObject({ name: 'ChunkHashMismatchError', code: 'CHUNK_HASH_MISMATCH', index: 1 })
    // Right bytes, wrong place.
    await expect(store.writeChunk(src.id, src.big.hash, 1, src.big.chunks[2]!)).rejects.toMatchObject({ name: 'ChunkHashMismatchError' })
    const badSmall = Buffer.from(src.small.bytes)
    badSmall.writeUInt8(badSmall.readUInt8(0) ^ 0x01, 0)
    await expect(store.writeChunk(src.id, src.small.hash, 0, badSmall)).rejects.toMatchObject({ name: 'ChunkHashMismatchError' })

    expect(await store.objectState(src.big.hash)).toEqual({ state: 'missing' })
    expect(await store.objectState(src.small.hash)).toEqual({ state: 'missing' })
    expect(await store.meta.partialObjects()).toEqual([])
    expect(await readdir(store.layout.partial)).toEqual([])
    await expect(store.readChunk(src.big.hash, 1)).rejects.toMatchObject({ name: 'ChunkNotPresentError' })

    // With a partial already there, a bad chunk leaves its bitmap and file as they were.
    await store.writeChunk(src.id, src.big.hash, 0, src.big.chunks[0]!)
    const partialBefore = await readFile(store.layout.partialPath(src.big.hash))
    await expect(store.writeChunk(src.id, src.big.hash, 3, Buffer.from(src.big.chunks[2]!.subarray(0, src.big.chunks[3]!.length)))).rejects.toMatchObject({ name: 'ChunkHashMismatchError' })
    const state = await store.objectState(src.big.hash)
    expect(state.state === 'partial' && state.bitmap.missing()).toEqual([1, 2, 3])
    expectSameBytes(await readFile(store.layout.partialPath(src.big.hash)), partialBefore)
  })

  it('completes an object from chunks written out of order: it appears in objects/ only then, and verifies', async () => {
    const src = await source()
    const { store } = await receiver(src)
    const completed: string[] = []
    const reread: Array<number | undefined> = []
    store.on('object:complete', ({ object, rereadBytes }) => { completed.push(object); reread.push(rereadBytes) })
    const order = [3, 0, 2, 1]
    for (const [n, index] of order.entries()) {
      const result = await store.writeChunk(src.id, src.big.hash, index, src.big.chunks[index]!)
      const last = n === order.length - 1
      expect(result).toEqual({ stored: true, objectComplete: last })
      if (!last) {
        await expect(stat(store.objectPath(src.big.hash))).rejects.toMatchObject({ code: 'ENOENT' })
        const state = await store.objectState(src.big.hash)
        expect(state.state === 'partial' && state.bitmap.missing()).toEqual([0, 1, 2, 3].filter(i => !order.slice(0, n + 1).includes(i)))
      }
    }
    expect(completed).toEqual([src.big.hash])
    // Chunks 0 and 1 were hashed as they came (0 arrived second, 1 last); 2 and 3 were read back.
    expect(reread).toEqual([src.big.chunks[2]!.length + src.big.chunks[3]!.length])
    expect(await store.objectState(src.big.hash)).toEqual({ state: 'complete' })
    expect(await b3sumOfFile(store.objectPath(src.big.hash))).toBe(src.big.hash)
    expect(await readdir(store.layout.partial)).toEqual([])
    expect(await store.meta.partialObjects()).toEqual([])
    // Written again: nothing to do.
    expect(await store.writeChunk(src.id, src.big.hash, 2, src.big.chunks[2]!)).toEqual({ stored: false, objectComplete: false })

    expect(await store.writeChunk(src.id, src.small.hash, 0, src.small.bytes)).toEqual({ stored: true, objectComplete: true })
    const report = await verifyStore(store)
    expect(report).toMatchObject({ ok: true, bad: [], missing: [] })
    const out = join(await tempDir(), 'out')
    await exportTree(store, src.id, out)
    expect(await treeManifest(out)).toBe(await treeManifest(src.tree))
  })

  it('completes an object whose chunks came in order without reading its file back', async () => {
    const src = await source()
    const { store } = await receiver(src)
    const reread: Array<number | undefined> = []
    store.on('object:complete', ({ rereadBytes }) => { reread.push(rereadBytes) })
    // All at once, as a pipelined peer delivers them: the writes may finish in any order.
    const results = await Promise.all(src.big.chunks.map(async (chunk, i) => await store.writeChunk(src.id, src.big.hash, i, chunk)))
    expect(results.filter(r => r.objectComplete)).toHaveLength(1)
    expect(reread).toEqual([0])
    expect(await b3sumOfFile(store.objectPath(src.big.hash))).toBe(src.big.hash)
  })

  it('resumes after a close and reopen: the chunk bitmap was persisted', async () => {
    const src = await source()
    const { store, dir } = await receiver(src)
    await store.writeChunk(src.id, src.big.hash, 2, src.big.chunks[2]!)
    await store.writeChunk(src.id, src.big.hash, 0, src.big.chunks[0]!)
    await close(store)

    const reopened = await open(dir)
    const state = await reopened.objectState(src.big.hash)
    expect(state.state).toBe('partial')
    expect(state.state === 'partial' && [0, 1, 2, 3].map(i => state.bitmap.has(i))).toEqual([true, false, true, false])
    expectSameBytes(await reopened.readChunk(src.big.hash, 2), src.big.chunks[2])
    const [summary] = await reopened.listBundles()
    expect(summary!.presentBytes).toBe(2 * CHUNK_SIZE_BYTES)

    // The already-held chunk is not written twice; the missing ones finish the object.
    expect(await reopened.writeChunk(src.id, src.big.hash, 0, src.big.chunks[0]!)).toEqual({ stored: false, objectComplete: false })
    expect(await reopened.writeChunk(src.id, src.big.hash, 3, src.big.chunks[3]!)).toEqual({ stored: true, objectComplete: false })
    expect(await reopened.writeChunk(src.id, src.big.hash, 1, src.big.chunks[1]!)).toEqual({ stored: true, objectComplete: true })
    expect(await b3sumOfFile(reopened.objectPath(src.big.hash))).toBe(src.big.hash)
  })

  it('readChunk returns only verified chunks; anything else is ChunkNotPresentError', async () => {
    const src = await source()
    const { store } = await receiver(src)
    await store.writeChunk(src.id, src.big.hash, 1, src.big.chunks[1]!)
    expectSameBytes(await store.readChunk(src.big.hash, 1), src.big.chunks[1])
    // The partial file is 2 MiB long now (chunk 1 at its offset): chunk 0's range holds zeros, not data.
    for (const index of [0, 2, 3, 4, -1]) {
      await expect(store.readChunk(src.big.hash, index)).rejects.toMatchObject({ name: 'ChunkNotPresentError', code: 'CHUNK_NOT_PRESENT' })
    }
    await expect(store.readChunk(src.small.hash, 0)).rejects.toMatchObject({ name: 'ChunkNotPresentError' })
    await expect(store.readChunk('0'.repeat(64), 0)).rejects.toMatchObject({ name: 'ChunkNotPresentError' })

    for (const [i, chunk] of src.big.chunks.entries()) await store.writeChunk(src.id, src.big.hash, i, chunk)
    expectSameBytes(await store.readChunk(src.big.hash, 3), src.big.chunks[3])
    await expect(store.readChunk(src.big.hash, 4)).rejects.toMatchObject({ name: 'ChunkNotPresentError' })
  })

  it('completes an object once when all its chunks arrive at the same time', async () => {
    const src = await source()
    const { store } = await receiver(src)
    const results = await Promise.all([...src.big.chunks, ...src.big.chunks].map(async (chunk, i) => await store.writeChunk(src.id, src.big.hash, i % 4, chunk)))
    expect(results.filter(r => r.objectComplete)).toHaveLength(1)
    expect(results.filter(r => r.stored)).toHaveLength(4)
    expect(await b3sumOfFile(store.objectPath(src.big.hash))).toBe(src.big.hash)
    expect(await store.meta.partialObjects()).toEqual([])
  })

  it.each([
    ['in order, hashed as they come', [0, 1, 2, 3]],
    ['out of order, read back at completion', [2, 0, 3, 1]],
  ])('refuses to complete an object whose chunk table does not add up to its checksum, and keeps nothing of it (%s)', async (_, order) => {
    // A bundle anyone can craft: big.bin's checksum names the real object, its chunk table
    // names other bytes. Every chunk then matches its table entry; only the whole-object hash
    // at completion can tell, and without it these bytes would be stored as the real object.
    const src = await source()
    const real = decodeBundleManifest(src.encoded)
    const forged = src.big.chunks.map(chunk => randomBytes(chunk.length))
    const tables = new Map(real.chunkTables)
    tables.set(src.big.hash, forged.map(chunk => blake3Hex(chunk)))
    const encoded = encodeBundleManifest(createBundleManifest(real.entries, tables))
    const id = bundleIdOf(encoded)
    const store = await open(await tempDir())
    await store.addBundle(encoded, { expectedId: id })
    for (const index of order.slice(0, 3)) expect(await store.writeChunk(id, src.big.hash, index, forged[index]!)).toEqual({ stored: true, objectComplete: false })
    await expect(store.writeChunk(id, src.big.hash, order[3]!, forged[order[3]!]!)).rejects.toMatchObject({ name: 'ObjectCorruptError', code: 'OBJECT_CORRUPT' })
    expect(await store.objectState(src.big.hash)).toEqual({ state: 'missing' })
    await expect(stat(store.objectPath(src.big.hash))).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await readdir(store.layout.partial)).toEqual([])
    await expect(store.readChunk(src.big.hash, 0)).rejects.toMatchObject({ name: 'ChunkNotPresentError' })
  })

  it('gc removes a partial object that is open for writing; a later write starts it afresh', async () => {
    const src = await source()
    const { store } = await receiver(src)
    await store.writeChunk(src.id, src.big.hash, 1, src.big.chunks[1]!)
    await store.writeChunk(src.id, src.big.hash, 2, src.big.chunks[2]!)
    await store.removeBundleRecord(src.id)
    expect((await collectGarbage(store)).removedPartials).toBe(1)
    expect(await readdir(store.layout.partial)).toEqual([])
    expect(await store.objectState(src.big.hash)).toEqual({ state: 'missing' })
    await expect(store.readChunk(src.big.hash, 1)).rejects.toMatchObject({ name: 'ChunkNotPresentError' })

    await store.addBundle(src.encoded, { expectedId: src.id })
    expect(await store.writeChunk(src.id, src.big.hash, 1, src.big.chunks[1]!)).toEqual({ stored: true, objectComplete: false })
    const state = await store.objectState(src.big.hash)
    expect(state.state === 'partial' && state.bitmap.missing()).toEqual([0, 2, 3])
  })

  it('serves a chunk from a kept read handle until gc removes the object, then not', async () => {
    const src = await source()
    const { store } = await receiver(src)
    for (const [i, chunk] of src.big.chunks.entries()) await store.writeChunk(src.id, src.big.hash, i, chunk)
    expectSameBytes(await store.readChunk(src.big.hash, 0), src.big.chunks[0])
    // Into a caller's buffer: the same bytes, in that memory.
    const into = Buffer.alloc(CHUNK_SIZE_BYTES)
    const read = await store.readChunk(src.big.hash, 3, { into })
    expect(read.buffer).toBe(into.buffer)
    expectSameBytes(read, src.big.chunks[3])
    await store.removeBundleRecord(src.id)
    expect((await collectGarbage(store)).removedObjects).toBeGreaterThan(0)
    await expect(store.readChunk(src.big.hash, 0)).rejects.toMatchObject({ name: 'ChunkNotPresentError' })
  })

  it('refuses a chunk for an object the bundle does not name', async () => {
    const src = await source()
    const { store } = await receiver(src)
    await expect(store.writeChunk(src.id, 'f'.repeat(64), 0, src.small.bytes)).rejects.toMatchObject({ name: 'ObjectUnknownError', code: 'OBJECT_UNKNOWN' })
    await expect(store.writeChunk('e'.repeat(64), src.small.hash, 0, src.small.bytes)).rejects.toMatchObject({ name: 'BundleNotFoundError' })
    expect(await store.objectState(src.small.hash)).toEqual({ state: 'missing' })
  })
})
