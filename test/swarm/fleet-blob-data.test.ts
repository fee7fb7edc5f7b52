import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { dataFrameHead, dataFramePayload } from '../../src/swarm/fleet-blob-data.js'
import { encodeVarint } from '../../src/swarm/framing.js'
import { FleetBlobFrame } from '../../src/swarm/pb/swarm-fleet-blob.pb.js'

function bytesOf (length: number, seed = 7): Uint8Array {
  const bytes = new Uint8Array(length)
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) & 0xff
  return bytes
}

/** Pieces of `bytes` cut at `cuts` (as the network and the muxer may cut a frame). */
function cutAt (bytes: Uint8Array, cuts: number[]): Uint8ArrayList {
  const points = [...new Set(cuts.map(c => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)
  const list = new Uint8ArrayList()
  let at = 0
  for (const point of [...points, bytes.byteLength]) {
    if (point > at) list.append(bytes.subarray(at, point))
    at = point
  }
  return list
}

function protonsDataFrame (data: Uint8Array): Uint8Array {
  return FleetBlobFrame.encode({ kind: FleetBlobFrame.Kind.DATA, data: data as Uint8Array<ArrayBuffer> })
}

describe('fleet-blob DATA frames read and written in place', () => {
  it('writes the bytes protons writes for a DATA frame', () => {
    for (const length of [1, 2, 127, 128, 16_383, 16_384, 65_536, 1024 * 1024, 2 ** 21 - 1, 2 ** 21]) {
      const data = bytesOf(length)
      const ours = new Uint8ArrayList(dataFrameHead(length), data).subarray()
      expect(Buffer.from(ours).equals(protonsDataFrame(data)), `length ${length}`).toBe(true)
    }
  })

  it('finds the data of a DATA frame cut at every byte boundary', () => {
    const data = bytesOf(300)
    const frame = protonsDataFrame(data)
    for (let cut = 0; cut <= frame.byteLength; cut++) {
      const payload = dataFramePayload(cutAt(frame, [cut]))
      expect(payload === undefined ? undefined : Buffer.from(payload.subarray()).equals(data), `cut at ${cut}`).toBe(true)
    }
    // Two cuts, every pair within the head (where the parser reads byte by byte) and around it.
    for (let first = 0; first <= 8; first++) {
      for (let second = first; second <= frame.byteLength; second++) {
        const payload = dataFramePayload(cutAt(frame, [first, second]))
        expect(payload === undefined ? undefined : Buffer.from(payload.subarray()).equals(data), `cuts at ${first}, ${second}`).toBe(true)
      }
    }
  })

  it('hands on the pieces without copying them', () => {
    const data = bytesOf(200_000)
    const frame = protonsDataFrame(data)
    const list = cutAt(frame, [3, 65_536, 131_072])
    const pieces = [...dataFramePayload(list) ?? []]
    expect(pieces).toHaveLength(3)
    // The last piece is a view of the memory that arrived, not a copy.
    expect(pieces.at(-1)?.buffer).toBe(frame.buffer)
  })

  it('finds no data in a frame of another kind, with other fields, or whose length is not its end', () => {
    const data = bytesOf(100)
    const cases: Array<[string, Uint8Array]> = [
      ['a HEADER', FleetBlobFrame.encode({ kind: FleetBlobFrame.Kind.HEADER, size: 100n })],
      ['an END', FleetBlobFrame.encode({ kind: FleetBlobFrame.Kind.END })],
      ['a FAILED', FleetBlobFrame.encode({ kind: FleetBlobFrame.Kind.FAILED, reason: 'gone' })],
      ['a DATA with a reason after its data', FleetBlobFrame.encode({ kind: FleetBlobFrame.Kind.DATA, data: data as Uint8Array<ArrayBuffer>, reason: 'x' })],
      ['a DATA with a size before its data', FleetBlobFrame.encode({ kind: FleetBlobFrame.Kind.DATA, size: 5n, data: data as Uint8Array<ArrayBuffer> })],
      ['data before kind', new Uint8ArrayList(protonsDataFrame(data).subarray(2), Uint8Array.of(0x08, 0x01)).subarray()],
      ['a truncated DATA', protonsDataFrame(data).subarray(0, 50)],
      ['a DATA cut inside its length', Uint8Array.of(0x08, 0x01, 0x1a, 0x80)],
      ['a DATA with bytes after its data', new Uint8ArrayList(protonsDataFrame(data), Uint8Array.of(0)).subarray()],
      ['a length past four bytes', Uint8Array.of(0x08, 0x01, 0x1a, 0x80, 0x80, 0x80, 0x80, 0x01)],
    ]
    for (const [what, frame] of cases) {
      for (let cut = 0; cut <= frame.byteLength; cut++) expect(dataFramePayload(cutAt(frame, [cut])), `${what}, cut at ${cut}`).toBeUndefined()
    }
  })

  it('never reads data protons would not read the same way', () => {
    const head = fc.oneof(fc.constant(Uint8Array.of(0x08, 0x01, 0x1a)), fc.uint8Array({ minLength: 3, maxLength: 3 }))
    fc.assert(fc.property(head, fc.boolean(), fc.uint8Array({ maxLength: 5 }), fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 4 }), (h, exact, length, rest, cuts) => {
      const frame = new Uint8ArrayList(h, exact ? encodeVarint(rest.byteLength) : length, rest).subarray()
      const payload = dataFramePayload(cutAt(frame, cuts))
      if (payload === undefined) return
      const decoded = FleetBlobFrame.decode(frame)
      expect(decoded.kind).toBe(FleetBlobFrame.Kind.DATA)
      expect(Buffer.from(decoded.data).equals(payload.subarray())).toBe(true)
    }), { numRuns: 2000 })
  })
})
