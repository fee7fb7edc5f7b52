import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
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

export interface SignedPreheatRecord {
  record: Uint8Array<ArrayBuffer>
  signature: Uint8Array<ArrayBuffer>
}

export namespace SignedPreheatRecord {
  let _codec: Codec<SignedPreheatRecord, Partial<SignedPreheatRecord>>

  export const codec = (): Codec<SignedPreheatRecord, Partial<SignedPreheatRecord>> => {
    if (_codec == null) {
      _codec = message<SignedPreheatRecord, Partial<SignedPreheatRecord>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.record != null && obj.record.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.record)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          record: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.record = reader.bytes()
              break
            }
            case 2: {
              obj.signature = reader.bytes()
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
                field: `${prefix}.record`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.signature`,
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

  export interface SignedPreheatRecordRecordFieldEvent {
    field: '$.record'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SignedPreheatRecordSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<SignedPreheatRecord>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SignedPreheatRecord.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedPreheatRecord>): SignedPreheatRecord {
    return decodeMessage(buf, SignedPreheatRecord.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedPreheatRecord>): Generator<SignedPreheatRecordRecordFieldEvent | SignedPreheatRecordSignatureFieldEvent> {
    return streamMessage(buf, SignedPreheatRecord.codec(), opts)
  }
}

export interface PreheatBatch {
  records: SignedPreheatRecord[]
}

export namespace PreheatBatch {
  let _codec: Codec<PreheatBatch, Partial<PreheatBatch>>

  export const codec = (): Codec<PreheatBatch, Partial<PreheatBatch>> => {
    if (_codec == null) {
      _codec = message<PreheatBatch, Partial<PreheatBatch>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.records != null && obj.records.length > 0) {
          for (const value of obj.records) {
            w.uint32(10)
            SignedPreheatRecord.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          records: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.records != null && obj.records.length === opts.limits.records) {
                throw new MaxLengthError('Decode error - repeated field "records" had too many elements')
              }

              obj.records.push(SignedPreheatRecord.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.records$
              }))
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
        const obj = {
          records: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.records != null && obj.records === opts.limits.records) {
                throw new MaxLengthError('Streaming decode error - repeated field "records" had too many elements')
              }

              for (const evt of SignedPreheatRecord.codec().stream(reader, reader.uint32(), `${prefix}.records[]`, {
                limits: opts.limits?.records$
              })) {
                yield {
                  ...evt,
                  index: obj.records
                }
              }

              obj.records++

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

  export interface PreheatBatchRecordsRecordFieldEvent {
    field: '$.records[].record'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface PreheatBatchRecordsSignatureFieldEvent {
    field: '$.records[].signature'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export function encode (obj: Partial<PreheatBatch>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PreheatBatch.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PreheatBatch>): PreheatBatch {
    return decodeMessage(buf, PreheatBatch.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PreheatBatch>): Generator<PreheatBatchRecordsRecordFieldEvent | PreheatBatchRecordsSignatureFieldEvent> {
    return streamMessage(buf, PreheatBatch.codec(), opts)
  }
}
