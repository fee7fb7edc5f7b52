import { decodeMessage, encodeMessage, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface RefRecord {
  ref: string
  bundleId: Uint8Array<ArrayBuffer>
  manifestDigest: string
  sequence: bigint
  publisher: Uint8Array<ArrayBuffer>
}

export namespace RefRecord {
  let _codec: Codec<RefRecord, Partial<RefRecord>>

  export const codec = (): Codec<RefRecord, Partial<RefRecord>> => {
    if (_codec == null) {
      _codec = message<RefRecord, Partial<RefRecord>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.ref != null && obj.ref !== '')) {
          w.uint32(10)
          w.string(obj.ref)
        }

        if ((obj.bundleId != null && obj.bundleId.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.bundleId)
        }

        if ((obj.manifestDigest != null && obj.manifestDigest !== '')) {
          w.uint32(26)
          w.string(obj.manifestDigest)
        }

        if ((obj.sequence != null && obj.sequence !== 0n)) {
          w.uint32(32)
          w.uint64(obj.sequence)
        }

        if ((obj.publisher != null && obj.publisher.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.publisher)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          ref: '',
          bundleId: uint8ArrayAlloc(0),
          manifestDigest: '',
          sequence: 0n,
          publisher: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.ref = reader.string()
              break
            }
            case 2: {
              obj.bundleId = reader.bytes()
              break
            }
            case 3: {
              obj.manifestDigest = reader.string()
              break
            }
            case 4: {
              obj.sequence = reader.uint64()
              break
            }
            case 5: {
              obj.publisher = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.ref`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.bundleId`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.manifestDigest`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.sequence`,
                value: reader.uint64()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.publisher`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface RefRecordRefFieldEvent {
    field: '$.ref'
    value: string
  }

  export interface RefRecordBundleIdFieldEvent {
    field: '$.bundleId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface RefRecordManifestDigestFieldEvent {
    field: '$.manifestDigest'
    value: string
  }

  export interface RefRecordSequenceFieldEvent {
    field: '$.sequence'
    value: bigint
  }

  export interface RefRecordPublisherFieldEvent {
    field: '$.publisher'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<RefRecord>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, RefRecord.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<RefRecord>): RefRecord {
    return decodeMessage(buf, RefRecord.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<RefRecord>): Generator<RefRecordRefFieldEvent | RefRecordBundleIdFieldEvent | RefRecordManifestDigestFieldEvent | RefRecordSequenceFieldEvent | RefRecordPublisherFieldEvent> {
    return streamMessage(buf, RefRecord.codec(), opts)
  }
}
