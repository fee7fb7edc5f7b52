import { decodeMessage, encodeMessage, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface PreheatRecord {
  bundleId: Uint8Array<ArrayBuffer>
  ref: string
  selector: string
  platform: string
  cancelled: boolean
  sequence: bigint
  publisher: Uint8Array<ArrayBuffer>
}

export namespace PreheatRecord {
  let _codec: Codec<PreheatRecord, Partial<PreheatRecord>>

  export const codec = (): Codec<PreheatRecord, Partial<PreheatRecord>> => {
    if (_codec == null) {
      _codec = message<PreheatRecord, Partial<PreheatRecord>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.bundleId != null && obj.bundleId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.bundleId)
        }

        if ((obj.ref != null && obj.ref !== '')) {
          w.uint32(18)
          w.string(obj.ref)
        }

        if ((obj.selector != null && obj.selector !== '')) {
          w.uint32(26)
          w.string(obj.selector)
        }

        if ((obj.platform != null && obj.platform !== '')) {
          w.uint32(34)
          w.string(obj.platform)
        }

        if ((obj.cancelled != null && obj.cancelled !== false)) {
          w.uint32(40)
          w.bool(obj.cancelled)
        }

        if ((obj.sequence != null && obj.sequence !== 0n)) {
          w.uint32(48)
          w.uint64(obj.sequence)
        }

        if ((obj.publisher != null && obj.publisher.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.publisher)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          bundleId: uint8ArrayAlloc(0),
          ref: '',
          selector: '',
          platform: '',
          cancelled: false,
          sequence: 0n,
          publisher: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.bundleId = reader.bytes()
              break
            }
            case 2: {
              obj.ref = reader.string()
              break
            }
            case 3: {
              obj.selector = reader.string()
              break
            }
            case 4: {
              obj.platform = reader.string()
              break
            }
            case 5: {
              obj.cancelled = reader.bool()
              break
            }
            case 6: {
              obj.sequence = reader.uint64()
              break
            }
            case 7: {
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
                field: `${prefix}.bundleId`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.ref`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.selector`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.platform`,
                value: reader.string()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.cancelled`,
                value: reader.bool()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.sequence`,
                value: reader.uint64()
              }
              break
            }
            case 7: {
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

  export interface PreheatRecordBundleIdFieldEvent {
    field: '$.bundleId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PreheatRecordRefFieldEvent {
    field: '$.ref'
    value: string
  }

  export interface PreheatRecordSelectorFieldEvent {
    field: '$.selector'
    value: string
  }

  export interface PreheatRecordPlatformFieldEvent {
    field: '$.platform'
    value: string
  }

  export interface PreheatRecordCancelledFieldEvent {
    field: '$.cancelled'
    value: boolean
  }

  export interface PreheatRecordSequenceFieldEvent {
    field: '$.sequence'
    value: bigint
  }

  export interface PreheatRecordPublisherFieldEvent {
    field: '$.publisher'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<PreheatRecord>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PreheatRecord.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PreheatRecord>): PreheatRecord {
    return decodeMessage(buf, PreheatRecord.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PreheatRecord>): Generator<PreheatRecordBundleIdFieldEvent | PreheatRecordRefFieldEvent | PreheatRecordSelectorFieldEvent | PreheatRecordPlatformFieldEvent | PreheatRecordCancelledFieldEvent | PreheatRecordSequenceFieldEvent | PreheatRecordPublisherFieldEvent> {
    return streamMessage(buf, PreheatRecord.codec(), opts)
  }
}
