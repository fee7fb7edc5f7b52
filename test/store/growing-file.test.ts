import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { GrowingFile, GrowingFileFailedError } from '../../src/store/index.js'
import { GROWING_PIECE_BYTES, GROWING_READ_BYTES } from '../../src/store/growing-file.js'
import { openFilesUnder } from '../helpers/open-files.js'

/** Reads until `count` bytes arrived, then stops (the reader stays open). */
async function firstBytes (read: AsyncIterable<Uint8Array[]>, count: number): Promise<{ bytes: Buffer, rest: AsyncIterator<Uint8Array[]> }> {
  const iterator = read[Symbol.asyncIterator]()
  const pieces: Uint8Array[] = []
  let total = 0
  while (total < count) {
    const next = await iterator.next()
    if (next.done === true) break
    for (const piece of next.value) {
      pieces.push(piece)
      total += piece.byteLength
    }
  }
  return { bytes: Buffer.concat(pieces), rest: iterator }
}

describe('GrowingFile: a staging file read while it is written', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'shoal-growing-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('gives readers every byte but the last until the writer completes, then the rest, even after the file moved', async () => {
    const file = await GrowingFile.create(join(dir, 'staging'), 10)
    const reader = file.reader()
    const signal = new AbortController().signal
    const read = reader.read({ stallMs: 10_000, signal })
    await file.append(Buffer.from('0123456789'))
    const { bytes, rest } = await firstBytes(read, 9)
    expect(bytes.toString()).toBe('012345678')
    // Nothing more until the writer says the whole file checked out.
    const last = rest.next()
    let settled = false
    void last.then(() => { settled = true })
    await new Promise(resolve => setImmediate(resolve))
    expect(settled).toBe(false)
    // The store takes the file (a rename) before the reader is done: the open handle still reads it.
    await rename(file.path, join(dir, 'object'))
    file.complete()
    expect(Buffer.concat((await last).value as Uint8Array[]).toString()).toBe('9')
    expect((await rest.next()).done).toBe(true)
    await file.writerFinished()
    await reader.close()
  })

  it('appends a frame\'s pieces in order, empty pieces and all, after what was written before, and hashes them', async () => {
    const file = await GrowingFile.create(join(dir, 'staging'), 12)
    await file.append(Buffer.from('ab'))
    await file.append([Buffer.from('cde'), Buffer.alloc(0), Buffer.from('f'), Buffer.from('ghij')])
    await file.append([])
    await file.append(new Set([Buffer.from('kl')]))
    expect(file.bytesWritten).toBe(12)
    // Hashed from the buffers written, pieces and all.
    expect(file.hashes()).toMatchObject({ size: 12, sha256: createHash('sha256').update('abcdefghijkl').digest('hex') })
    file.complete()
    const reader = file.reader()
    const got: Uint8Array[] = []
    for await (const pieces of reader.read({ stallMs: 10_000, signal: new AbortController().signal })) got.push(...pieces)
    expect(Buffer.concat(got).toString()).toBe('abcdefghijkl')
    await file.writerFinished()
    await reader.close()
  })

  it('reads each step into fresh pieces of at most GROWING_PIECE_BYTES, a step at most GROWING_READ_BYTES, every byte in order', async () => {
    const blob = Buffer.alloc(2 * GROWING_READ_BYTES + 12_345)
    for (let i = 0; i < blob.byteLength; i++) blob[i] = (i * 7 + (i >> 13)) & 0xff
    const file = await GrowingFile.create(join(dir, 'staging'), blob.byteLength)
    await file.append(blob)
    file.complete()
    const reader = file.reader()
    const steps: Uint8Array[][] = []
    for await (const pieces of reader.read({ start: 3, stallMs: 10_000, signal: new AbortController().signal })) steps.push(pieces)
    expect(steps.length).toBe(3)
    for (const pieces of steps) {
      expect(pieces.reduce((sum, piece) => sum + piece.byteLength, 0)).toBeLessThanOrEqual(GROWING_READ_BYTES)
      for (const piece of pieces) expect(piece.byteLength).toBeLessThanOrEqual(GROWING_PIECE_BYTES)
    }
    // Fresh memory each: no two pieces share a buffer, so a consumer may keep any of them.
    const memory = new Set(steps.flat().map(piece => piece.buffer))
    expect(memory.size).toBe(steps.flat().length)
    expect(Buffer.concat(steps.flat()).equals(blob.subarray(3))).toBe(true)
    await file.writerFinished()
    await reader.close()
  })

  it('reads into the caller\'s buffer from a position to an end, holding back the last byte until complete, and says 0 at the end', async () => {
    const file = await GrowingFile.create(join(dir, 'staging'), 10)
    const reader = file.reader()
    const signal = new AbortController().signal
    await file.append(Buffer.from('0123456789'))
    const into = Buffer.alloc(4)
    expect(await reader.readInto(into, { position: 2, end: 5, stallMs: 10_000, signal })).toBe(3)
    expect(into.subarray(0, 3).toString()).toBe('234')
    expect(await reader.readInto(into, { position: 5, stallMs: 10_000, signal })).toBe(4)
    expect(into.toString()).toBe('5678')
    const last = reader.readInto(into, { position: 9, stallMs: 10_000, signal })
    let settled = false
    void last.then(() => { settled = true })
    await new Promise(resolve => setImmediate(resolve))
    expect(settled).toBe(false)
    file.complete()
    expect(await last).toBe(1)
    expect(into.subarray(0, 1).toString()).toBe('9')
    expect(await reader.readInto(into, { position: 10, stallMs: 10_000, signal })).toBe(0)
    await file.writerFinished()
    await reader.close()
  })

  it('removes the file and fails every reader when the writer fails', async () => {
    const file = await GrowingFile.create(join(dir, 'staging'), 8)
    const readers = [file.reader(), file.reader()]
    await file.append(Buffer.from('abcd'))
    const reads = readers.map(async (reader) => {
      const got: Uint8Array[] = []
      for await (const pieces of reader.read({ stallMs: 10_000, signal: new AbortController().signal })) got.push(...pieces)
      return got
    })
    // Settled now, so a read that fails while `fail` removes the file is not an unhandled rejection.
    const outcomes = reads.map(async read => await read.then(() => 'finished', (err: unknown) => err instanceof Error ? err.message : String(err)))
    await file.fail(new GrowingFileFailedError('the upstream dropped'))
    expect(await Promise.all(outcomes)).toEqual(['the upstream dropped', 'the upstream dropped'])
    expect(existsSync(join(dir, 'staging'))).toBe(false)
    for (const reader of readers) await reader.close()
  })

  it('fails a reader when nothing new arrives within its stall time', async () => {
    const file = await GrowingFile.create(join(dir, 'staging'), undefined)
    const reader = file.reader()
    const read = reader.read({ stallMs: 50, signal: new AbortController().signal })
    await expect(read.next()).rejects.toMatchObject({ code: 'GROWING_FILE_FAILED' })
    await reader.close()
    await file.fail(new Error('test over'))
  })

  it('keeps its handle open while the writer or any reader needs it, and closes it once the last of them lets go', async () => {
    const file = await GrowingFile.create(join(dir, 'staging'), 4)
    const early = file.reader()
    const late = file.reader()
    await file.append(Buffer.from('abcd'))
    file.complete()
    // A reader stopped mid-read (its client went away) lets go through close, like any other.
    const aborted = new AbortController()
    const read = early.read({ stallMs: 10_000, signal: aborted.signal })
    expect(Buffer.concat((await read.next()).value as Uint8Array[]).toString()).toBe('abcd')
    aborted.abort(new Error('the client went away'))
    await early.close()
    await file.writerFinished()
    expect(await openFilesUnder([dir])).toHaveLength(1)
    await late.close()
    expect(await openFilesUnder([dir])).toEqual([])
    expect(() => file.reader()).toThrow(/already closed/)
  })

  it('closes its handle when the writer fails and its readers close, and a whole file\'s when its one reader closes', async () => {
    const failing = await GrowingFile.create(join(dir, 'failing'), 8)
    const reader = failing.reader()
    await failing.fail(new GrowingFileFailedError('the upstream dropped'))
    await expect(reader.read({ stallMs: 10_000, signal: new AbortController().signal }).next()).rejects.toThrow('the upstream dropped')
    expect(await openFilesUnder([dir])).toHaveLength(1)
    await reader.close()
    await reader.close()
    expect(await openFilesUnder([dir])).toEqual([])

    await writeFile(join(dir, 'object'), 'held')
    const whole = (await GrowingFile.whole(join(dir, 'object'))).reader()
    expect(whole.size).toBe(4)
    expect(await openFilesUnder([dir])).toHaveLength(1)
    await whole.close()
    expect(await openFilesUnder([dir])).toEqual([])
    await expect(GrowingFile.whole(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
