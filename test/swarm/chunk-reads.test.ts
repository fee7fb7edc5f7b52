import { describe, expect, it } from 'vitest'
import { ChunkReads, copyInPieces, FRAME_HEAD_ROOM_BYTES, type FramedChunk, type ReadChunk } from '../../src/swarm/chunk-reads.js'
import { isDirectAligned } from '../../src/store/direct-io.js'

const MIB = 1024 * 1024

/** A chunk of `length` bytes whose every byte says which chunk it is. */
function chunkBytes (index: number, length = MIB): Buffer {
  return Buffer.alloc(length, index + 1)
}

/** Reads as the store does: chunk `index` (chunk 2 a short last one) into the memory given, returned as a Buffer over it; `intos` collects that memory. */
function storeRead (intos: Uint8Array[] = []): ReadChunk {
  return async (_hash, index, { into }) => {
    if (into === undefined) throw new Error('no buffer given')
    intos.push(into)
    const bytes = chunkBytes(index, index === 2 ? 1000 : MIB)
    into.set(bytes)
    return Buffer.from(into.buffer, into.byteOffset, bytes.byteLength)
  }
}

/** Whether two framed reads' buffers are the same memory (buffers may share one: the pool's aligned slabs). */
function samePlace (a: FramedChunk, b: FramedChunk): boolean {
  return a.buffer.buffer === b.buffer.buffer && a.buffer.byteOffset === b.buffer.byteOffset
}

describe('chunk reads for sending', () => {
  it('cuts a chunk into copies of at most the piece size, in order', () => {
    const bytes = Buffer.from(Array.from({ length: 200 }, (_, i) => i))
    const pieces = copyInPieces(bytes, 64)
    expect(pieces.map(p => p.byteLength)).toEqual([64, 64, 64, 8])
    expect(Buffer.concat(pieces)).toEqual(bytes)
    bytes.fill(0)
    expect(pieces[0]?.[5]).toBe(5)
  })

  it('reads through a reused buffer, yet pieces handed out keep their bytes when the buffer is read into again', async () => {
    const intos: Uint8Array[] = []
    const reads = new ChunkReads(storeRead(intos), 1)
    const signal = new AbortController().signal
    const first = await reads.pieces('object', 0, signal)
    const second = await reads.pieces('object', 1, signal)
    const short = await reads.pieces('object', 2, signal)
    // One buffer for all three reads: no fresh chunk-sized memory per read.
    expect(intos[0]?.buffer).toBe(intos[1]?.buffer)
    expect(intos[1]?.buffer).toBe(intos[2]?.buffer)
    expect(Buffer.concat(first).equals(chunkBytes(0))).toBe(true)
    expect(Buffer.concat(second).equals(chunkBytes(1))).toBe(true)
    expect(Buffer.concat(short).equals(chunkBytes(2, 1000))).toBe(true)
    expect(Math.max(...first.map(p => p.byteLength))).toBeLessThanOrEqual(64 * 1024)
  })

  it('gives the buffer back when a read fails', async () => {
    const intos: Uint8Array[] = []
    let fail = true
    const reads = new ChunkReads(async (_hash, _index, { into }) => {
      if (into === undefined) throw new Error('no buffer given')
      intos.push(into)
      if (fail) throw Object.assign(new Error('not here'), { code: 'CHUNK_NOT_PRESENT' })
      return into.subarray(0, 10)
    }, 1)
    const signal = new AbortController().signal
    await expect(reads.pieces('object', 0, signal)).rejects.toThrow('not here')
    fail = false
    await reads.pieces('object', 0, signal)
    expect(intos[0]?.buffer).toBe(intos[1]?.buffer)
  })

  it('reads a chunk framed behind room for its head, and lends its buffer again only once it is released', async () => {
    const reads = new ChunkReads(storeRead(), 1)
    const signal = new AbortController().signal
    const first = await reads.framed('object', 0, signal)
    expect(first.bytes.byteOffset - first.buffer.byteOffset).toBe(FRAME_HEAD_ROOM_BYTES)
    expect(Buffer.from(first.bytes).equals(chunkBytes(0))).toBe(true)
    // Still lent (its write has not completed): the next read must not land in it.
    const second = await reads.framed('object', 1, signal)
    const [low, high] = [first.buffer, second.buffer].sort((a, b) => a.byteOffset - b.byteOffset)
    if (first.buffer.buffer === second.buffer.buffer) expect((low?.byteOffset ?? 0) + FRAME_HEAD_ROOM_BYTES + MIB).toBeLessThanOrEqual(high?.byteOffset ?? 0)
    expect(Buffer.from(first.bytes).equals(chunkBytes(0))).toBe(true)
    first.release()
    second.release()
    const short = await reads.framed('object', 2, signal)
    expect(samePlace(short, first) || samePlace(short, second)).toBe(true)
    expect(Buffer.from(short.bytes).equals(chunkBytes(2, 1000))).toBe(true)
  })

  it('reads a framed chunk into memory where its bytes start on a page boundary, so a direct read lands there with no bounce copy', async () => {
    const intos: Uint8Array[] = []
    const reads = new ChunkReads(storeRead(intos), 1)
    const signal = new AbortController().signal
    const framed = [await reads.framed('object', 0, signal), await reads.framed('object', 1, signal)]
    for (const [i, into] of intos.entries()) {
      expect(isDirectAligned(into.subarray(0, MIB))).toBe(true)
      expect(into.byteOffset).toBe(framed[i]?.bytes.byteOffset)
    }
  })

  it('copies a framed read the store answered from memory of its own into the buffer', async () => {
    const reads = new ChunkReads(async (_hash, index) => chunkBytes(index, 500), 1)
    const framed = await reads.framed('object', 3, new AbortController().signal)
    expect(framed.bytes.buffer).toBe(framed.buffer.buffer)
    expect(Buffer.from(framed.bytes).equals(chunkBytes(3, 500))).toBe(true)
  })
})
