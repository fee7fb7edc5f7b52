import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { decodeVarint, encodeVarint, LARGE_FRAME_BYTES, readFrames, sendFrame } from '../../src/swarm/framing.js'
import type { Stream } from '@libp2p/interface'

/** Just enough of a libp2p stream for the frame reader: events in, abort out. */
class FakeStream extends EventTarget {
  status: 'open' | 'aborted' = 'open'
  abortedWith: Error | undefined

  deliver (bytes: Uint8Array): void {
    const evt = new Event('message') as Event & { data: Uint8Array }
    evt.data = bytes
    this.dispatchEvent(evt)
  }

  end (): void {
    this.dispatchEvent(new Event('remoteCloseWrite'))
  }

  abort (err: Error): void {
    if (this.status !== 'open') return
    this.status = 'aborted'
    this.abortedWith = err
    this.dispatchEvent(new Event('close'))
  }

  asStream (): Stream {
    return this as unknown as Stream
  }
}

/** A stream that lends each piece from one buffer of its own and scribbles over it once the reader returns, as a lane asker's TLS socket reuses its one buffer. */
class LendingFakeStream extends FakeStream {
  private reader: ((bytes: Uint8Array) => void) | undefined
  private readonly memory = new Uint8Array(LARGE_FRAME_BYTES * 16)

  readLent (reader: (bytes: Uint8Array) => void): void {
    this.reader = reader
  }

  override deliver (bytes: Uint8Array): void {
    this.memory.set(bytes)
    this.reader?.(this.memory.subarray(0, bytes.byteLength))
    this.memory.fill(0xdd)
  }
}

/**
 * A lending stream that reads where the reader says, as a lane asker's TLS socket does
 * (lane-transport.ts): each delivered piece is a TLS record, read into the memory `place` gives
 * (split across reads when that memory is shorter) or else into the stream's own buffer, which
 * is overwritten after each call.
 */
class PlacingFakeStream extends FakeStream {
  private reader: ((bytes: Uint8Array) => void) | undefined
  private place: (() => Uint8Array | undefined) | undefined
  private readonly memory = new Uint8Array(LARGE_FRAME_BYTES * 16)
  /** Bytes read into the reader's memory, and reads of them. */
  placedBytes = 0
  placedReads = 0

  readLent (reader: (bytes: Uint8Array) => void, place?: () => Uint8Array | undefined): void {
    this.reader = reader
    this.place = place
  }

  override deliver (bytes: Uint8Array): void {
    let at = 0
    while (at < bytes.byteLength && this.status === 'open') {
      const into = this.place?.()
      if (into !== undefined && into.byteLength > 0) {
        const take = Math.min(into.byteLength, bytes.byteLength - at)
        into.set(bytes.subarray(at, at + take))
        this.placedBytes += take
        this.placedReads++
        at += take
        this.reader?.(into.subarray(0, take))
        continue
      }
      const take = bytes.byteLength - at
      this.memory.set(bytes.subarray(at))
      at += take
      this.reader?.(this.memory.subarray(0, take))
      this.memory.fill(0xdd)
    }
  }
}

function frame (payload: Uint8Array): Uint8Array {
  return new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()
}

/** Splits bytes at the given cut points, as TCP and yamux may. */
function split (bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map(c => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)
  const pieces: Uint8Array[] = []
  let at = 0
  for (const point of points) {
    pieces.push(bytes.subarray(at, point))
    at = point
  }
  pieces.push(bytes.subarray(at))
  return pieces.filter(p => p.byteLength > 0)
}

/** Sizes of small and large frames mixed, for the lending streams' properties. */
const mixedSizes = fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: LARGE_FRAME_BYTES, max: LARGE_FRAME_BYTES * 2 })), { minLength: 1, maxLength: 6 })

/** Payloads of those sizes, each patterned differently so that a byte out of place shows. */
function patterned (sizes: number[]): Buffer[] {
  return sizes.map((size, i) => {
    const bytes = Buffer.alloc(size)
    for (let j = 0; j < size; j += 97) bytes.fill((j + i) & 0xff, j, Math.min(size, j + 97))
    return bytes
  })
}

/** Whether `pieces`, one after the other, are exactly `bytes` (compared in place, no copies). */
function samePieces (pieces: Uint8Array[], bytes: Buffer): boolean {
  let offset = 0
  for (const piece of pieces) {
    if (!Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength).equals(bytes.subarray(offset, offset + piece.byteLength))) return false
    offset += piece.byteLength
  }
  return offset === bytes.byteLength
}

/** Reads large frames into memory of its own (a buffer larger than any frame, filled with 0xee); returns that memory as given. */
function readAssembling (stream: FakeStream, onFrame: (frame: Uint8Array) => void): Uint8Array[] {
  const given: Uint8Array[] = []
  readFrames(stream.asStream(), {
    maxFrameBytes: LARGE_FRAME_BYTES * 4,
    messageTimeoutMs: 10_000,
    onFrame,
    allocate: (bytes) => {
      const buffer = new Uint8Array(Math.max(bytes, LARGE_FRAME_BYTES * 4)).fill(0xee)
      given.push(buffer)
      return buffer
    },
  })
  return given
}

describe('framing', () => {
  it('round-trips varints', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 28 - 1 }), (n) => {
      expect(decodeVarint(new Uint8ArrayList(encodeVarint(n)))).toEqual({ value: n, bytes: encodeVarint(n).byteLength })
    }))
  })

  it('delivers every frame whole however the bytes are split', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (payloads, cuts) => {
        const stream = new FakeStream()
        const frames: Uint8Array[] = []
        let ended = false
        readFrames(stream.asStream(), { maxFrameBytes: 300, messageTimeoutMs: 10_000, onFrame: f => { frames.push(Uint8Array.from(f)) }, onEnd: () => { ended = true } })
        const wire = new Uint8ArrayList(...payloads.map(frame)).subarray()
        for (const piece of split(wire, cuts)) stream.deliver(piece)
        stream.end()
        expect(frames).toEqual(payloads.map(p => Uint8Array.from(p)))
        expect(ended).toBe(true)
        expect(stream.status).toBe('open')
      },
    ))
  })

  it('assembles large frames in the memory it is given, whole however they are split', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: LARGE_FRAME_BYTES, max: LARGE_FRAME_BYTES * 3 }), { minLength: 1, maxLength: 3 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (sizes, cuts) => {
        const payloads = sizes.map((size, i) => {
          const bytes = Buffer.alloc(size)
          for (let j = 0; j < size; j += 4096) bytes.fill(((j >> 12) + i) & 0xff, j, Math.min(size, j + 4096))
          return bytes
        })
        const stream = new FakeStream()
        const frames: Uint8Array[] = []
        const given = readAssembling(stream, (f) => { frames.push(Uint8Array.from(f)) })
        const wire = new Uint8ArrayList(...payloads.map(frame)).subarray()
        for (const piece of split(wire, cuts.map(c => c * 997))) stream.deliver(piece)
        // Buffer.equals: vitest's deep equality walks a 200 KiB array element by element.
        expect(frames.map((f, i) => Buffer.from(f).equals(payloads[i] ?? Buffer.alloc(0)))).toEqual(payloads.map(() => true))
        expect(given).toHaveLength(payloads.length)
      },
    ), { numRuns: 25 })
  })

  it('copies a large frame\'s pieces into its memory as they arrive, keeping none of them', () => {
    const large = Buffer.alloc(LARGE_FRAME_BYTES * 2)
    for (let i = 0; i < large.byteLength; i++) large[i] = (i * 13) & 0xff
    const wire = Buffer.from(frame(large))
    const half = LARGE_FRAME_BYTES
    const stream = new FakeStream()
    const frames: Uint8Array[] = []
    const given = readAssembling(stream, (f) => { frames.push(f) })
    const first = Buffer.from(wire.subarray(0, half))
    stream.deliver(first)
    // Taken when the frame started, holding what has come so far.
    expect(given).toHaveLength(1)
    const head = encodeVarint(large.byteLength).byteLength
    expect(Buffer.from(given[0]?.subarray(0, half - head) ?? []).equals(large.subarray(0, half - head))).toBe(true)
    // The piece delivered is not read again: it was copied when it came.
    first.fill(0)
    stream.deliver(wire.subarray(half))
    expect(frames).toHaveLength(1)
    expect(Buffer.from(frames[0] ?? []).equals(large)).toBe(true)
    expect(frames[0]?.buffer).toBe(given[0]?.buffer)
    expect(stream.status).toBe('open')
  })

  it('resets a stream that ends, or stops sending, inside a large frame being assembled', async () => {
    const large = Buffer.alloc(LARGE_FRAME_BYTES + 5, 9)
    const wire = frame(large)
    const allocate = (bytes: number): Uint8Array => new Uint8Array(bytes)
    for (const keep of [1, 3, 4, LARGE_FRAME_BYTES, wire.byteLength - 1]) {
      const stream = new FakeStream()
      const frames: unknown[] = []
      readFrames(stream.asStream(), { maxFrameBytes: LARGE_FRAME_BYTES * 2, messageTimeoutMs: 10_000, onFrame: f => { frames.push(f) }, allocate })
      stream.deliver(wire.subarray(0, keep))
      stream.end()
      expect(stream.status).toBe('aborted')
      expect(stream.abortedWith?.name).toBe('ProtocolViolationError')
      expect(frames).toEqual([])
    }
    // Every byte that came is in the frame's memory, none waits in the reader: the message's
    // deadline still runs.
    const stream = new FakeStream()
    readFrames(stream.asStream(), { maxFrameBytes: LARGE_FRAME_BYTES * 2, messageTimeoutMs: 50, onFrame: () => {}, allocate })
    stream.deliver(wire.subarray(0, LARGE_FRAME_BYTES))
    await new Promise<void>(resolve => { stream.addEventListener('close', () => { resolve() }) })
    expect(stream.abortedWith?.name).toBe('MessageTimeoutError')
  })

  it('hands large frames on as the pieces they arrived in, whole however they are split', () => {
    const large = Buffer.alloc(LARGE_FRAME_BYTES + 5)
    for (let i = 0; i < large.byteLength; i++) large[i] = (i * 7) & 0xff
    const small = Uint8Array.of(1, 2, 3)
    const wire = new Uint8ArrayList(frame(small), frame(large), frame(small)).subarray()
    // Every byte boundary of the wire (~64k cuts), the large frame's prefix and edges included.
    // Each cut's pieces are compared where they lie: joining them and copying the join for the
    // comparison moved ~8 GiB per run, and at load ~15 that took longer than the test's 60 s.
    for (let cut = 1; cut < wire.byteLength; cut++) {
      const stream = new FakeStream()
      const smallFrames: Uint8Array[] = []
      const largeFrames: Uint8ArrayList[] = []
      readFrames(stream.asStream(), {
        maxFrameBytes: LARGE_FRAME_BYTES * 2,
        messageTimeoutMs: 10_000,
        onFrame: f => { smallFrames.push(Uint8Array.from(f)) },
        onLargeFrame: f => { largeFrames.push(f) },
        allocate: () => { throw new Error('a large frame was assembled') },
      })
      stream.deliver(wire.subarray(0, cut))
      stream.deliver(wire.subarray(cut))
      const pieces = largeFrames.length === 1 ? [...largeFrames[0] as Uint8ArrayList] : []
      // Split in two, the large frame's bytes are at most two pieces, never a joined copy.
      const whole = pieces.length >= 1 && pieces.length <= 2 && samePieces(pieces, large)
      if (smallFrames.length !== 2 || !smallFrames.every(f => Buffer.from(f).equals(small)) || largeFrames.length !== 1 || !whole) {
        expect.fail(`cut at ${cut}: ${smallFrames.length} small frames, ${largeFrames.length} large in ${pieces.length} pieces${whole ? '' : ' (not the bytes sent)'}, status ${stream.status}`)
      }
    }
  })

  it('resets the stream when it ends inside a large frame handed on in pieces', () => {
    const large = Buffer.alloc(LARGE_FRAME_BYTES + 5, 9)
    const wire = frame(large)
    for (const keep of [1, 3, 4, LARGE_FRAME_BYTES, wire.byteLength - 1]) {
      const stream = new FakeStream()
      const frames: unknown[] = []
      readFrames(stream.asStream(), { maxFrameBytes: LARGE_FRAME_BYTES * 2, messageTimeoutMs: 10_000, onFrame: f => { frames.push(f) }, onLargeFrame: f => { frames.push(f) } })
      stream.deliver(wire.subarray(0, keep))
      stream.end()
      expect(stream.status).toBe('aborted')
      expect(stream.abortedWith?.name).toBe('ProtocolViolationError')
      expect(frames).toEqual([])
    }
  })

  it('keeps no lent bytes: small and large frames come whole though each piece\'s memory is overwritten after its call', () => {
    fc.assert(fc.property(
      mixedSizes,
      fc.array(fc.nat(), { maxLength: 40 }),
      (sizes, cuts) => {
        const payloads = patterned(sizes)
        const stream = new LendingFakeStream()
        const frames: Uint8Array[] = []
        // Kept as handed over, not copied: a frame still pointing into lent memory would read 0xdd here.
        readAssembling(stream, (f) => { frames.push(f) })
        const wire = new Uint8ArrayList(...payloads.map(frame)).subarray()
        for (const piece of split(wire, cuts.map(c => c * 613))) stream.deliver(piece)
        expect(frames.map((f, i) => Buffer.from(f).equals(payloads[i] ?? Buffer.alloc(0)))).toEqual(payloads.map(() => true))
        expect(stream.status).toBe('open')
      },
    ), { numRuns: 40 })
  })

  it('reads the rest of a large frame into its memory in place, whole however records and frames interleave', () => {
    fc.assert(fc.property(
      mixedSizes,
      fc.array(fc.nat(), { maxLength: 40 }),
      (sizes, cuts) => {
        const payloads = patterned(sizes)
        const stream = new PlacingFakeStream()
        const frames: Buffer[] = []
        // Copied out, then the memory scribbled over as the pool's next user would: a read placed
        // into a frame already handed on would corrupt it or lose the next frame's bytes.
        readAssembling(stream, (f) => { frames.push(Buffer.from(f)); f.fill(0xcc) })
        const wire = new Uint8ArrayList(...payloads.map(frame)).subarray()
        for (const piece of split(wire, cuts.map(c => c * 613))) stream.deliver(piece)
        expect(frames.map((f, i) => f.equals(payloads[i] ?? Buffer.alloc(0)))).toEqual(payloads.map(() => true))
        expect(stream.status).toBe('open')
      },
    ), { numRuns: 60 })
  })

  it('places a large frame\'s records after its first, splits the record that crosses its end, and takes a split head and a bad length after it', () => {
    const body = Buffer.alloc(LARGE_FRAME_BYTES + 1000)
    for (let i = 0; i < body.byteLength; i++) body[i] = (i * 7 + 3) & 0xff
    const small = Buffer.from('the next frame')
    const wire = Buffer.from(new Uint8ArrayList(frame(body), frame(small), frame(body)).subarray())
    const second = frame(body).byteLength + frame(small).byteLength
    const stream = new PlacingFakeStream()
    const frames: Buffer[] = []
    readAssembling(stream, (f) => { frames.push(Buffer.from(f)); f.fill(0xcc) })
    // Records of 16 KiB, but the one crossing the first frame's end ends 1 byte into the next
    // frame's length prefix, so the prefix is split across two records.
    const cuts = [16384, 32768, 49152, 65536, frame(body).byteLength + 1, second + 100, second + 20_000]
    for (const piece of split(wire, cuts)) stream.deliver(piece)
    expect(frames.map(f => f.toString('hex'))).toEqual([body, small, body].map(f => f.toString('hex')))
    // Everything of each large frame but what came in the record its head came in was read in
    // place: the first frame's first 16384 − head bytes, the second's first 100 − head.
    const head = encodeVarint(body.byteLength).byteLength
    expect(stream.placedBytes).toBe((body.byteLength - (16384 - head)) + (body.byteLength - (100 - head)))
    // A length past the limit after a placed frame resets the stream; nothing more is placed.
    const before = stream.placedBytes
    stream.deliver(encodeVarint(LARGE_FRAME_BYTES * 5))
    stream.deliver(body)
    expect(stream.status).toBe('aborted')
    expect(stream.abortedWith?.name).toBe('MessageTooLargeError')
    expect(stream.placedBytes).toBe(before)
    expect(frames).toHaveLength(3)
  })

  it('resets the stream on an oversized, over-long or non-minimal length prefix', () => {
    fc.assert(fc.property(
      fc.oneof(
        fc.integer({ min: 301, max: 2 ** 28 - 1 }).map(encodeVarint),
        fc.constant(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x01)),
        fc.constant(Uint8Array.of(0x80, 0x00)),
      ),
      (prefix) => {
        const stream = new FakeStream()
        const frames: Uint8Array[] = []
        readFrames(stream.asStream(), { maxFrameBytes: 300, messageTimeoutMs: 10_000, onFrame: f => { frames.push(f) } })
        stream.deliver(prefix)
        expect(stream.status).toBe('aborted')
        expect(['MessageTooLargeError', 'ProtocolViolationError']).toContain(stream.abortedWith?.name)
        expect(frames).toEqual([])
      },
    ))
  })

  it('resets the stream when it ends inside a frame', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), (payload, cut) => {
      const wire = frame(payload)
      const stream = new FakeStream()
      readFrames(stream.asStream(), { maxFrameBytes: 300, messageTimeoutMs: 10_000, onFrame: () => {} })
      stream.deliver(wire.subarray(0, 1 + (cut % (wire.byteLength - 1))))
      stream.end()
      expect(stream.status).toBe('aborted')
      expect(stream.abortedWith?.name).toBe('ProtocolViolationError')
    }))
  })

  it('resets a stream whose message stops arriving halfway', async () => {
    const stream = new FakeStream()
    readFrames(stream.asStream(), { maxFrameBytes: 300, messageTimeoutMs: 50, onFrame: () => {} })
    stream.deliver(Uint8Array.of(10, 1, 2, 3))
    await new Promise<void>(resolve => { stream.addEventListener('close', () => { resolve() }) })
    expect(stream.abortedWith?.name).toBe('MessageTimeoutError')
  })

  it('resets the stream when a handler throws, and delivers nothing after', () => {
    const stream = new FakeStream()
    const seen: number[] = []
    readFrames(stream.asStream(), {
      maxFrameBytes: 300,
      messageTimeoutMs: 10_000,
      onFrame: (f) => {
        seen.push(f.byteLength)
        if (f.byteLength === 2) throw new Error('bad message')
      },
    })
    stream.deliver(new Uint8ArrayList(frame(Uint8Array.of(1)), frame(Uint8Array.of(1, 2)), frame(Uint8Array.of(1, 2, 3))).subarray())
    expect(seen).toEqual([1, 2])
    // A message the handler could not take is the peer's fault: a typed violation the swarm charges.
    expect(stream.abortedWith).toMatchObject({ code: 'SWARM_PROTOCOL_VIOLATION' })
    expect(stream.abortedWith?.message).toContain('bad message')
  })

  it('bounds a send by its timeout only when the stream cannot take the frame at once', async () => {
    /** A stream that takes frames, or holds them unsent for good. */
    const sink = (takes: boolean): Stream => Object.assign(new EventTarget(), {
      status: 'open',
      writeBufferLength: takes ? 0 : 10,
      sent: [] as Uint8ArrayList[],
      send (list: Uint8ArrayList) { this.sent.push(list); return takes },
    }) as unknown as Stream
    const taking = sink(true)
    await sendFrame(taking, Uint8Array.of(7, 8), { timeoutMs: 20 })
    expect((taking as unknown as { sent: Uint8ArrayList[] }).sent.map(list => [...list.subarray()])).toEqual([[2, 7, 8]])
    await expect(sendFrame(sink(false), Uint8Array.of(7), { timeoutMs: 20 })).rejects.toMatchObject({ name: 'TimeoutError' })
  })

  it('leaves no timer behind once a held frame has left: a holder sends thousands of them', async () => {
    vi.useFakeTimers()
    try {
      const held = Object.assign(new EventTarget(), {
        status: 'open',
        writeBufferLength: 10,
        send () { return false },
      })
      const sending = sendFrame(held as unknown as Stream, Uint8Array.of(7), { timeoutMs: 90_000 })
      expect(vi.getTimerCount()).toBe(1)
      held.writeBufferLength = 0
      held.dispatchEvent(new Event('drain'))
      await sending
      expect(vi.getTimerCount()).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })
})
