import { ProtocolViolationError } from './errors.js'

/**
 * The asker's direction of a lane (lane-stream.ts): records, each a type byte and a varint,
 * so the asker can tell the holder how many of its bytes it has taken, as yamux's window
 * updates do on libp2p. The holder's direction is the chunk protocol's bytes as they are.
 *
 *   0x00 LEN BYTES   data: LEN (1..MAX_LANE_RECORD_BYTES) bytes of the chunk protocol
 *   0x01 N           credit: N (≥ 1) more bytes of the holder's were received
 *
 * Without credits the holder's pace and reader budget counted what the kernel's socket buffers
 * held as read, so on a slow link a cancelled chunk was already past anything a CANCEL could
 * stop (the 8-host bed's wire went from 1.04-1.05x to up to 1.09x the bundle).
 */
const DATA = 0x00
const CREDIT = 0x01

/** A data record's payload at most: requests are ~45 bytes each, and a larger send is split. */
export const MAX_LANE_RECORD_BYTES = 64 * 1024
/** A varint of up to 4 bytes (2^28 - 1): every record's number fits. */
const MAX_VARINT_BYTES = 4
const MAX_VARINT = 2 ** (7 * MAX_VARINT_BYTES) - 1

function varint (value: number, out: number[]): void {
  let rest = value
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 128)
  }
  out.push(rest)
}

/** The heads of data records carrying `bytes` bytes, one per MAX_LANE_RECORD_BYTES slice. */
export function dataRecordHead (bytes: number): Uint8Array {
  const out = [DATA]
  varint(bytes, out)
  return Uint8Array.from(out)
}

/** Credit records for `bytes` received (split if past what one varint holds). */
export function creditRecords (bytes: number): Uint8Array {
  const out: number[] = []
  for (let rest = bytes; rest > 0; rest -= Math.min(rest, MAX_VARINT)) {
    out.push(CREDIT)
    varint(Math.min(rest, MAX_VARINT), out)
  }
  return Uint8Array.from(out)
}

export interface LaneRecordSink {
  /** Payload bytes of data records, as they arrive (a record may come in several parts). */
  data: (bytes: Uint8Array) => void
  credit: (bytes: number) => void
}

/**
 * Reads the asker's records as they arrive, handing data on without copying it. A malformed
 * record throws ProtocolViolationError: the lane is the peer's, and the peer is charged.
 */
export class LaneRecordReader {
  /** The record head read so far (type byte and varint), or the data bytes still to come. */
  private head: number[] = []
  private dataLeft = 0

  constructor (private readonly sink: LaneRecordSink) {}

  push (chunk: Uint8Array): void {
    let at = 0
    while (at < chunk.byteLength) {
      if (this.dataLeft > 0) {
        const take = Math.min(this.dataLeft, chunk.byteLength - at)
        this.dataLeft -= take
        this.sink.data(chunk.subarray(at, at + take))
        at += take
        continue
      }
      const byte = chunk[at++] as number
      this.head.push(byte)
      if (this.head.length === 1) {
        if (byte !== DATA && byte !== CREDIT) throw new ProtocolViolationError(`a lane record of type ${byte}`)
        continue
      }
      if ((byte & 0x80) !== 0) {
        if (this.head.length - 1 >= MAX_VARINT_BYTES) throw new ProtocolViolationError('a lane record number longer than 4 bytes')
        continue
      }
      const [type, ...digits] = this.head
      this.head = []
      let value = 0
      for (let i = 0; i < digits.length; i++) value += ((digits[i] as number) & 0x7f) * 2 ** (7 * i)
      if (value === 0) throw new ProtocolViolationError('an empty lane record')
      if (type === CREDIT) {
        this.sink.credit(value)
        continue
      }
      if (value > MAX_LANE_RECORD_BYTES) throw new ProtocolViolationError(`a lane record of ${value} bytes (at most ${MAX_LANE_RECORD_BYTES})`)
      this.dataLeft = value
    }
  }

  /** Whether the stream may end here (not inside a record). */
  get atBoundary (): boolean {
    return this.head.length === 0 && this.dataLeft === 0
  }
}
