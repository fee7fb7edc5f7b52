import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CHUNK_SIZE_BYTES } from '../../src/manifest/index.js'
import { DirectIoMode } from '../../src/store/direct-io.js'
import { ingestBlobFile, openStore, pushTree, verifyStore, type GrowingFile, type Store, type StoreEvents } from '../../src/store/index.js'
import { b3sumOfFile } from '../helpers/independent-hashes.js'
import { refuseDirectReads, refuseDirectWrites } from '../helpers/refuse-direct-io.js'
import { useTempDirs } from '../helpers/temp-dir.js'

/** O_DIRECT in /proc/PID/fdinfo's octal `flags` (x86-64 and arm64 differ: read from node). */
const O_DIRECT = (await import('node:fs')).constants.O_DIRECT

/** Whether this process holds `path` open with O_DIRECT (undefined when it does not hold it open). */
async function openWithDirect (path: string): Promise<boolean | undefined> {
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => undefined)
    if (target !== path) continue
    const flags = /^flags:\s+([0-7]+)$/m.exec(await readFile(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1]
    return (parseInt(flags ?? '0', 8) & O_DIRECT) !== 0
  }
  return undefined
}

function sameBytes (actual: Uint8Array, expected: Uint8Array): boolean {
  return Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected)
}

/** A mount point for ramfs, which refuses O_DIRECT at open; undefined when this process cannot mount (not root). */
function ramfsAt (dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'ramfs', 'ramfs', dir], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
const canMount = process.getuid?.() === 0

describe('chunk writes with O_DIRECT', () => {
  const tempDir = useTempDirs()
  const opened: Store[] = []
  const mounts: string[] = []
  // Registered after useTempDirs, so it runs first: stores close and mounts go before their directories.
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close()
    for (const dir of mounts.splice(0)) execFileSync('umount', [dir])
  })

  /**
   * A bundle with one object of three chunks whose last is not a whole number of blocks (and,
   * with `second`, another such object), and a store (direct I/O asked for) that holds only its
   * manifest.
   */
  async function receiverIn (dir: string, options: { second?: boolean } = {}): Promise<{ store: Store, id: string, hash: string, size: number, chunks: Buffer[], second: { hash: string, chunks: Buffer[] } }> {
    const tree = await tempDir()
    const size = 2 * CHUNK_SIZE_BYTES + 1000
    const names = options.second === true ? ['layer.bin', 'second.bin'] : ['layer.bin']
    const objects: Array<{ hash: string, chunks: Buffer[] }> = []
    for (const name of names) {
      const bytes = randomBytes(size)
      await writeFile(join(tree, name), bytes)
      objects.push({ hash: await b3sumOfFile(join(tree, name)), chunks: [0, 1, 2].map(i => bytes.subarray(i * CHUNK_SIZE_BYTES, (i + 1) * CHUNK_SIZE_BYTES)) })
    }
    const source = await openStore({ dir: await tempDir() })
    const { bundleId } = await pushTree(source, tree)
    const encoded = (await source.getEncodedBundle(bundleId))!
    await source.close()
    const store = await openStore({ dir, directIo: true })
    opened.push(store)
    await store.addBundle(encoded, { expectedId: bundleId })
    const [first, second] = objects as [{ hash: string, chunks: Buffer[] }, { hash: string, chunks: Buffer[] } | undefined]
    return { store, id: bundleId, hash: first.hash, size, chunks: first.chunks, second: second ?? first }
  }

  it('writes past the page cache: the tail first (rounded up, then truncated), chunks read back whole while partial, and the object completes exact', async () => {
    const { store, id, hash, size, chunks } = await receiverIn(await tempDir())
    expect(store.directIo).toEqual({ on: true })
    const partial = store.layout.partialPath(hash)

    // The tail (1000 bytes) first: written as a whole block, the file then cut to the object's size.
    expect(await store.writeChunk(id, hash, 2, chunks[2]!)).toEqual({ stored: true, objectComplete: false })
    expect(await openWithDirect(partial)).toBe(true)
    expect((await stat(partial)).size).toBe(size)
    // Read back through the direct handle: an unaligned length, into memory of the caller's own.
    expect(sameBytes(await store.readChunk(hash, 2), chunks[2]!)).toBe(true)

    expect(await store.writeChunk(id, hash, 0, chunks[0]!)).toEqual({ stored: true, objectComplete: false })
    const into = Buffer.alloc(CHUNK_SIZE_BYTES + 1).subarray(1)
    expect(sameBytes(await store.readChunk(hash, 0, { into }), chunks[0]!)).toBe(true)

    // The last write completes it: chunks 0 and 1 hash from memory, the tail is read back (direct).
    const reread: Array<number | undefined> = []
    store.on('object:complete', ({ rereadBytes }) => { reread.push(rereadBytes) })
    expect(await store.writeChunk(id, hash, 1, chunks[1]!)).toEqual({ stored: true, objectComplete: true })
    expect(reread).toEqual([chunks[2]!.length])
    expect((await stat(store.objectPath(hash))).size).toBe(size)
    expect(await b3sumOfFile(store.objectPath(hash))).toBe(hash)
    // Its reads skip the page cache too, through a kept handle: the tail, and a whole chunk into memory of the caller's own.
    expect(sameBytes(await store.readChunk(hash, 2), chunks[2]!)).toBe(true)
    expect(await openWithDirect(store.objectPath(hash))).toBe(true)
    expect(sameBytes(await store.readChunk(hash, 1, { into }), chunks[1]!)).toBe(true)
    expect(await verifyStore(store)).toMatchObject({ ok: true, bad: [], missing: [] })
  })

  it('reads objects it did not write past the page cache through it', async () => {
    const dir = await tempDir()
    const tree = await tempDir()
    const bytes = randomBytes(CHUNK_SIZE_BYTES + 1000)
    await writeFile(join(tree, 'layer.bin'), bytes)
    const store = await openStore({ dir, directIo: true })
    opened.push(store)
    await pushTree(store, tree)
    const hash = await b3sumOfFile(join(tree, 'layer.bin'))
    expect(sameBytes(await store.readChunk(hash, 1), bytes.subarray(CHUNK_SIZE_BYTES))).toBe(true)
    expect(await openWithDirect(store.objectPath(hash))).toBe(false)
  })

  it('reopens a partial object whose tail is durable and completes it from the file', async () => {
    const dir = await tempDir()
    const first = await receiverIn(dir)
    await first.store.writeChunk(first.id, first.hash, 2, first.chunks[2]!)
    await first.store.writeChunk(first.id, first.hash, 1, first.chunks[1]!)
    await first.store.close()
    opened.splice(opened.indexOf(first.store), 1)

    const store = await openStore({ dir, directIo: true })
    opened.push(store)
    expect(sameBytes(await store.readChunk(first.hash, 1), first.chunks[1]!)).toBe(true)
    expect(await store.writeChunk(first.id, first.hash, 0, first.chunks[0]!)).toEqual({ stored: true, objectComplete: true })
    expect((await stat(store.objectPath(first.hash))).size).toBe(first.size)
    expect(await b3sumOfFile(store.objectPath(first.hash))).toBe(first.hash)
  })

  it.skipIf(!canMount)('falls back to the page cache where the filesystem refuses O_DIRECT (ramfs), and says why', async () => {
    const dir = await tempDir()
    await mkdir(dir, { recursive: true })
    if (!ramfsAt(dir)) throw new Error(`could not mount ramfs at ${dir}`)
    mounts.push(dir)
    const { store, id, hash, size, chunks } = await receiverIn(join(dir, 'data'))
    expect(store.directIo).toEqual({ on: false, refused: expect.stringMatching(/EINVAL/) as unknown as string })
    await store.writeChunk(id, hash, 2, chunks[2]!)
    expect(await openWithDirect(store.layout.partialPath(hash))).toBe(false)
    expect((await stat(store.layout.partialPath(hash))).size).toBe(size)
    expect(sameBytes(await store.readChunk(hash, 2), chunks[2]!)).toBe(true)
    await store.writeChunk(id, hash, 0, chunks[0]!)
    expect(await store.writeChunk(id, hash, 1, chunks[1]!)).toEqual({ stored: true, objectComplete: true })
    expect(await b3sumOfFile(store.objectPath(hash))).toBe(hash)
    // The probe left nothing behind.
    expect(await readdir(store.layout.tmp)).toEqual([])
  })

  /** The store's 'direct-io:refused' events, from now on. */
  function refusalsOf (store: Store): Array<StoreEvents['direct-io:refused']> {
    const refusals: Array<StoreEvents['direct-io:refused']> = []
    store.on('direct-io:refused', refusal => { refusals.push(refusal) })
    return refusals
  }

  describe('when the filesystem refuses O_DIRECT after the probe passed', () => {
    it('turns the mode off at the first refusal and reports that one only; other errors are no refusal', () => {
      const reported: unknown[] = []
      const mode = new DirectIoMode(true, undefined, refusal => { reported.push(refusal) })
      expect(mode.refusedBy(Object.assign(new Error('no space'), { code: 'ENOSPC' }), 'write', '/a')).toBe(false)
      expect(mode.on).toBe(true)
      expect(mode.refusedBy(Object.assign(new Error('refused'), { code: 'EOPNOTSUPP' }), 'write', '/a')).toBe(true)
      // Writes under way on other files meet it too: each falls back, nothing more is reported.
      expect(mode.refusedBy(Object.assign(new Error('refused'), { code: 'EINVAL' }), 'open', '/b')).toBe(true)
      expect(mode.on).toBe(false)
      expect(mode.refused).toBe('EOPNOTSUPP from an O_DIRECT write of /a, after the filesystem had taken O_DIRECT')
      expect(reported).toEqual([{ code: 'EOPNOTSUPP', op: 'write', path: '/a' }])
    })

    it('writes a refused chunk through the page cache from its own copy (the caller reused its buffer), and every file after it, said once', async () => {
      const { store, id, hash, size, chunks, second } = await receiverIn(await tempDir(), { second: true })
      const refusals = refusalsOf(store)
      // Another object's file, open with O_DIRECT before the refusal.
      await store.writeChunk(id, second.hash, 0, second.chunks[0]!)
      expect(await openWithDirect(store.layout.partialPath(second.hash))).toBe(true)
      const seam = await refuseDirectWrites(0)
      try {
        // Chunk 0 comes in order, so its buffer is the caller's again as soon as it is copied for
        // the direct write, before that write is refused: the caller scribbles over it then.
        const mine = Buffer.from(chunks[0]!)
        expect(await store.writeChunk(id, hash, 0, mine, { onWritten: () => { mine.fill(0) } })).toEqual({ stored: true, objectComplete: false })
        expect(seam.refused()).toBe(1)
        expect(store.directIo).toEqual({ on: false, refused: expect.stringMatching(/^EINVAL from an O_DIRECT write of /) as unknown as string })
        expect(refusals).toEqual([{ code: 'EINVAL', op: 'write', path: store.layout.partialPath(hash) }])
        expect(sameBytes(await store.readChunk(hash, 0), chunks[0]!)).toBe(true)

        // For good: no chunk is tried with O_DIRECT again, in this file or the other one.
        await store.writeChunk(id, hash, 2, chunks[2]!)
        expect(await store.writeChunk(id, hash, 1, chunks[1]!)).toEqual({ stored: true, objectComplete: true })
        await store.writeChunk(id, second.hash, 2, second.chunks[2]!)
        expect(await store.writeChunk(id, second.hash, 1, second.chunks[1]!)).toEqual({ stored: true, objectComplete: true })
        expect(seam.refused()).toBe(1)
      } finally {
        seam.restore()
      }
      expect(refusals).toHaveLength(1)
      for (const object of [hash, second.hash]) {
        expect((await stat(store.objectPath(object))).size).toBe(size)
        expect(await b3sumOfFile(store.objectPath(object))).toBe(object)
      }
      expect(await verifyStore(store)).toMatchObject({ ok: true, bad: [], missing: [] })
    })

    it('writes a refused tail at its own length, not rounded up to a block that nobody cuts back', async () => {
      const { store, id, hash, size, chunks } = await receiverIn(await tempDir())
      const seam = await refuseDirectWrites(0)
      try {
        expect(await store.writeChunk(id, hash, 2, chunks[2]!)).toEqual({ stored: true, objectComplete: false })
        expect(seam.refused()).toBe(1)
        expect((await stat(store.layout.partialPath(hash))).size).toBe(size)
        await store.writeChunk(id, hash, 0, chunks[0]!)
        expect(await store.writeChunk(id, hash, 1, chunks[1]!)).toEqual({ stored: true, objectComplete: true })
      } finally {
        seam.restore()
      }
      expect((await stat(store.objectPath(hash))).size).toBe(size)
      expect(await b3sumOfFile(store.objectPath(hash))).toBe(hash)
    })

    it('keeps a refusal of another kind an error (ENOSPC stays DiskFullError)', async () => {
      const { store, id, hash, chunks } = await receiverIn(await tempDir())
      const seam = await refuseDirectWrites(0, 'ENOSPC')
      try {
        await expect(store.writeChunk(id, hash, 0, chunks[0]!)).rejects.toMatchObject({ name: 'DiskFullError' })
      } finally {
        seam.restore()
      }
      expect(store.directIo).toEqual({ on: true })
    })

    it('reads a refused tail back through the page cache to complete an object it wrote directly, said once', async () => {
      const { store, id, hash, size, chunks } = await receiverIn(await tempDir())
      const refusals = refusalsOf(store)
      await store.writeChunk(id, hash, 2, chunks[2]!)
      await store.writeChunk(id, hash, 0, chunks[0]!)
      expect(await openWithDirect(store.layout.partialPath(hash))).toBe(true)
      const reread: Array<number | undefined> = []
      store.on('object:complete', ({ rereadBytes }) => { reread.push(rereadBytes) })
      const seam = await refuseDirectReads(0)
      try {
        // Chunk 1 completes it: chunk 0 and 1 hash from memory, the tail is read back from the file.
        expect(await store.writeChunk(id, hash, 1, chunks[1]!)).toEqual({ stored: true, objectComplete: true })
        expect(seam.refused()).toBe(1)
        expect(reread).toEqual([chunks[2]!.length])
        expect(refusals).toEqual([{ code: 'EINVAL', op: 'read', path: store.layout.partialPath(hash) }])
        expect(store.directIo).toEqual({ on: false, refused: expect.stringMatching(/^EINVAL from an O_DIRECT read of /) as unknown as string })
        // Its reads go through the page cache from then on.
        expect(sameBytes(await store.readChunk(hash, 2), chunks[2]!)).toBe(true)
        expect(await openWithDirect(store.objectPath(hash))).toBe(false)
        expect(seam.refused()).toBe(1)
      } finally {
        seam.restore()
      }
      expect(refusals).toHaveLength(1)
      expect((await stat(store.objectPath(hash))).size).toBe(size)
      expect(await b3sumOfFile(store.objectPath(hash))).toBe(hash)
    })

    it('serves a chunk of an object it wrote directly through the page cache when the read is refused, and every read after it, said once', async () => {
      const { store, id, hash, chunks } = await receiverIn(await tempDir())
      for (const index of [0, 1, 2]) await store.writeChunk(id, hash, index, chunks[index]!)
      // The chunk server's reads: through the object's kept handle, opened with O_DIRECT.
      expect(sameBytes(await store.readChunk(hash, 2), chunks[2]!)).toBe(true)
      expect(await openWithDirect(store.objectPath(hash))).toBe(true)
      const refusals = refusalsOf(store)
      const seam = await refuseDirectReads(0, 'EOPNOTSUPP')
      try {
        // A whole chunk into memory of the caller's own (unaligned: through an aligned buffer), then the tail.
        const into = Buffer.alloc(CHUNK_SIZE_BYTES + 1).subarray(1)
        expect(sameBytes(await store.readChunk(hash, 1, { into }), chunks[1]!)).toBe(true)
        expect(seam.refused()).toBe(1)
        expect(refusals).toEqual([{ code: 'EOPNOTSUPP', op: 'read', path: store.objectPath(hash) }])
        expect(store.directIo).toEqual({ on: false, refused: expect.stringMatching(/^EOPNOTSUPP from an O_DIRECT read of /) as unknown as string })
        expect(sameBytes(await store.readChunk(hash, 2), chunks[2]!)).toBe(true)
        expect(sameBytes(await store.readChunk(hash, 0), chunks[0]!)).toBe(true)
        expect(seam.refused()).toBe(1)
      } finally {
        seam.restore()
      }
      expect(refusals).toHaveLength(1)
      expect(await verifyStore(store)).toMatchObject({ ok: true, bad: [], missing: [] })
    })

    it.skipIf(!canMount)('opens partial files through the page cache where the filesystem refuses O_DIRECT at their open (ramfs over partial/, the probe on the disk)', async () => {
      const dir = await tempDir()
      await mkdir(join(dir, 'partial'), { recursive: true })
      if (!ramfsAt(join(dir, 'partial'))) throw new Error(`could not mount ramfs at ${dir}/partial`)
      mounts.push(join(dir, 'partial'))
      const { store, id, hash, size, chunks } = await receiverIn(dir)
      expect(store.directIo).toEqual({ on: true })
      const refusals = refusalsOf(store)
      expect(await store.writeChunk(id, hash, 2, chunks[2]!)).toEqual({ stored: true, objectComplete: false })
      expect(refusals).toEqual([{ code: 'EINVAL', op: 'open', path: store.layout.partialPath(hash) }])
      expect(store.directIo).toEqual({ on: false, refused: expect.stringMatching(/^EINVAL from an O_DIRECT open of /) as unknown as string })
      expect(await openWithDirect(store.layout.partialPath(hash))).toBe(false)
      expect((await stat(store.layout.partialPath(hash))).size).toBe(size)
      await store.writeChunk(id, hash, 0, chunks[0]!)
      expect(sameBytes(await store.readChunk(hash, 0), chunks[0]!)).toBe(true)
      expect(sameBytes(await store.readChunk(hash, 2), chunks[2]!)).toBe(true)
      // Completing it would rename the file out of the ramfs into objects/ (EXDEV): not this test's.
      expect(refusals).toHaveLength(1)
    })
  })
})

describe('staging files with O_DIRECT (Store.createStagingFile, a pull-through\'s blob as it arrives)', () => {
  const tempDir = useTempDirs()
  const opened: Store[] = []
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close()
  })
  const MIB = 1024 * 1024
  const signal = new AbortController().signal

  async function directStore (): Promise<Store> {
    const store = await openStore({ dir: await tempDir(), directIo: true })
    opened.push(store)
    expect(store.directIo).toEqual({ on: true })
    return store
  }

  /** Appends `blob` in pieces of `piece` bytes (never a whole block: the writer's copies must line them up). */
  async function appendIn (file: GrowingFile, blob: Buffer, piece: number): Promise<void> {
    const half = Math.floor(piece / 2)
    for (let at = 0; at < blob.byteLength; at += piece) await file.append([blob.subarray(at, at + half), blob.subarray(at + half, at + piece)])
  }

  async function readAll (read: AsyncIterable<Uint8Array[]>): Promise<Buffer> {
    const pieces: Uint8Array[] = []
    for await (const step of read) pieces.push(...step)
    return Buffer.concat(pieces)
  }

  it('writes past the page cache, gives readers every byte (near the writer from memory, behind it from the disk, at any offset), and leaves the file exact', async () => {
    const store = await directStore()
    const blob = randomBytes(7 * MIB + 1234)
    const file = await store.createStagingFile('upstream', blob.byteLength, 'a test blob')
    expect(await openWithDirect(file.path)).toBe(true)
    const follower = file.reader()
    const followed = readAll(follower.read({ stallMs: 10_000, signal }))
    await appendIn(file, blob, 300_001)
    // Behind the writer by more than the buffers it keeps: these come from the disk.
    const late = file.reader()
    const odd = Buffer.alloc(100_000)
    expect(await late.readInto(odd, { position: 12_345, stallMs: 10_000, signal })).toBe(odd.byteLength)
    expect(odd.equals(blob.subarray(12_345, 112_345))).toBe(true)
    const lateRead = readAll(late.read({ stallMs: 10_000, signal }))
    const hashed = await file.finish()
    expect(hashed.sha256).toBe(createHash('sha256').update(blob).digest('hex'))
    file.complete()
    expect((await followed).equals(blob)).toBe(true)
    expect((await lateRead).equals(blob)).toBe(true)
    // The last blocks were written padded: the file is cut to the blob's size.
    expect((await readFile(file.path)).equals(blob)).toBe(true)
    await Promise.all([follower.close(), late.close(), file.writerFinished()])
  })

  it('reads the object a direct staging file became past the page cache too, and one staged through the page cache through it', async () => {
    const blob = randomBytes(2 * MIB + 1000)
    const object = async (store: Store): Promise<string> => {
      const file = await store.createStagingFile('upstream', blob.byteLength, 'a test blob')
      await appendIn(file, blob, 300_001)
      const hashed = await file.finish()
      file.complete()
      const { object } = await ingestBlobFile(store, file.path, { hashed, sha256: hashed.sha256 })
      await file.writerFinished()
      expect(sameBytes(await store.readChunk(object, 1), blob.subarray(MIB, 2 * MIB))).toBe(true)
      return object
    }
    const direct = await directStore()
    expect(await openWithDirect(direct.objectPath(await object(direct)))).toBe(true)
    const buffered = await openStore({ dir: await tempDir(), directIo: false })
    opened.push(buffered)
    expect(await openWithDirect(buffered.objectPath(await object(buffered)))).toBe(false)
  })

  it('refuses to complete a file whose last bytes are still only in memory', async () => {
    const store = await directStore()
    const blob = randomBytes(5000)
    const file = await store.createStagingFile('upstream', blob.byteLength, 'a test blob')
    await file.append(blob)
    expect(() => { file.complete() }).toThrow(/before finish: 5000 bytes are not in it/)
    await file.finish()
    file.complete()
    expect((await readFile(file.path)).equals(blob)).toBe(true)
    await file.writerFinished()
  })

  it('goes on through the page cache when the filesystem refuses O_DIRECT after the probe, and a full disk is DiskFullError', async () => {
    const store = await directStore()
    const blob = randomBytes(3 * MIB + 5)
    const file = await store.createStagingFile('upstream', blob.byteLength, 'a test blob')
    const seam = await refuseDirectWrites(1)
    try {
      await appendIn(file, blob, 200_000)
      await file.finish()
      expect(seam.refused()).toBe(1)
    } finally {
      seam.restore()
    }
    file.complete()
    expect(store.directIo.on).toBe(false)
    expect((await readFile(file.path)).equals(blob)).toBe(true)
    expect(await readAll(file.reader().read({ stallMs: 10_000, signal }))).toEqual(blob)
    await file.writerFinished()

    const full = await (await directStore()).createStagingFile('upstream', 2 * MIB, 'a second blob')
    const noSpace = await refuseDirectWrites(0, 'ENOSPC')
    try {
      await expect(full.append(randomBytes(2 * MIB))).rejects.toMatchObject({ name: 'DiskFullError' })
    } finally {
      noSpace.restore()
    }
    await full.fail(new Error('the test gave up'))
  })
})
