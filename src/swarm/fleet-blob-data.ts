import { Uint8ArrayList } from 'uint8arraylist'
import { encodeVarint } from './framing.js'

/**
 * A fleet-blob DATA frame's few protobuf bytes, written and read without protons touching the
 * blob's bytes. protons copies a DATA frame's megabyte into a fresh encoding when it writes one
 * (0.2 s of a gateway per 512 MiB) and needs it joined into one buffer to read one (the
 * edge's 2.1 s of page faults, docs/architecture.md "containerd through an edge"). A DATA
 * frame as protons writes it is `kind` then `data`, in field order, and nothing else
 * (proto/swarm-fleet-blob.proto: the other fields are empty in DATA and proto3 leaves them
 * out): tag 1 varint, DATA, tag 3 length-delimited, the length, the bytes.
 */

/** (field number << 3) | wire type, of FleetBlobFrame's `kind` (varint) and `data` (bytes). */
const KIND_TAG = (1 << 3) | 0
const DATA_TAG = (3 << 3) | 2
/** FleetBlobFrame.Kind.DATA. */
const KIND_DATA = 1
/** A length of up to 2^28 - 1; a DATA frame's 1 MiB needs 3. */
const MAX_LENGTH_BYTES = 4

/** The bytes ahead of `dataBytes` bytes of blob in a DATA frame: the frame is these, then the data. */
export function dataFrameHead (dataBytes: number): Uint8Array {
  const length = encodeVarint(dataBytes)
  const head = new Uint8Array(3 + length.byteLength)
  head.set([KIND_TAG, KIND_DATA, DATA_TAG])
  head.set(length, 3)
  return head
}

/**
 * The blob bytes of a DATA frame laid out exactly as dataFrameHead writes it (the frame's
 * pieces, unjoined), or undefined for any other frame: another kind, other fields, another
 * order, a length that does not end the frame. Undefined says only "not this shape": the
 * caller then decodes the frame with protons, which judges whether it is valid at all.
 */
export function dataFramePayload (frame: Uint8ArrayList): Uint8ArrayList | undefined {
  if (frame.byteLength < 4 || frame.get(0) !== KIND_TAG || frame.get(1) !== KIND_DATA || frame.get(2) !== DATA_TAG) return undefined
  let length = 0
  for (let i = 0; i < MAX_LENGTH_BYTES && 3 + i < frame.byteLength; i++) {
    const byte = frame.get(3 + i)
    length += (byte & 0x7f) * 2 ** (7 * i)
    if ((byte & 0x80) !== 0) continue
    const start = 4 + i
    // protons reads a non-minimal length the same; only the frame's end must agree.
    return start + length === frame.byteLength ? frame.sublist(start) : undefined
  }
  return undefined
}
