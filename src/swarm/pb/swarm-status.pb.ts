import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface StatusBody {
  version: string
  labels: StatusLabel[]
  complete: Uint8Array<ArrayBuffer>[]
  completeCount: number
  partial: PartialBundle[]
  partialCount: number
  freeBytes: bigint
  uploadRate: bigint
  downloadRate: bigint
  intervalMs: number
}

export namespace StatusBody {
  let _codec: Codec<StatusBody, Partial<StatusBody>>

  export const codec = (): Codec<StatusBody, Partial<StatusBody>> => {
    if (_codec == null) {
      _codec = message<StatusBody, Partial<StatusBody>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== '')) {
          w.uint32(10)
          w.string(obj.version)
        }

        if (obj.labels != null && obj.labels.length > 0) {
          for (const value of obj.labels) {
            w.uint32(18)
            StatusLabel.codec().encode(value, w)
          }
        }

        if (obj.complete != null && obj.complete.length > 0) {
          for (const value of obj.complete) {
            w.uint32(26)
            w.bytes(value)
          }
        }

        if ((obj.completeCount != null && obj.completeCount !== 0)) {
          w.uint32(32)
          w.uint32(obj.completeCount)
        }

        if (obj.partial != null && obj.partial.length > 0) {
          for (const value of obj.partial) {
            w.uint32(42)
            PartialBundle.codec().encode(value, w)
          }
        }

        if ((obj.partialCount != null && obj.partialCount !== 0)) {
          w.uint32(48)
          w.uint32(obj.partialCount)
        }

        if ((obj.freeBytes != null && obj.freeBytes !== 0n)) {
          w.uint32(56)
          w.uint64(obj.freeBytes)
        }

        if ((obj.uploadRate != null && obj.uploadRate !== 0n)) {
          w.uint32(64)
          w.uint64(obj.uploadRate)
        }

        if ((obj.downloadRate != null && obj.downloadRate !== 0n)) {
          w.uint32(72)
          w.uint64(obj.downloadRate)
        }

        if ((obj.intervalMs != null && obj.intervalMs !== 0)) {
          w.uint32(80)
          w.uint32(obj.intervalMs)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: '',
          labels: [],
          complete: [],
          completeCount: 0,
          partial: [],
          partialCount: 0,
          freeBytes: 0n,
          uploadRate: 0n,
          downloadRate: 0n,
          intervalMs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.version = reader.string()
              break
            }
            case 2: {
              if (opts.limits?.labels != null && obj.labels.length === opts.limits.labels) {
                throw new MaxLengthError('Decode error - repeated field "labels" had too many elements')
              }

              obj.labels.push(StatusLabel.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.labels$
              }))
              break
            }
            case 3: {
              if (opts.limits?.complete != null && obj.complete.length === opts.limits.complete) {
                throw new MaxLengthError('Decode error - repeated field "complete" had too many elements')
              }

              obj.complete.push(reader.bytes())
              break
            }
            case 4: {
              obj.completeCount = reader.uint32()
              break
            }
            case 5: {
              if (opts.limits?.partial != null && obj.partial.length === opts.limits.partial) {
                throw new MaxLengthError('Decode error - repeated field "partial" had too many elements')
              }

              obj.partial.push(PartialBundle.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.partial$
              }))
              break
            }
            case 6: {
              obj.partialCount = reader.uint32()
              break
            }
            case 7: {
              obj.freeBytes = reader.uint64()
              break
            }
            case 8: {
              obj.uploadRate = reader.uint64()
              break
            }
            case 9: {
              obj.downloadRate = reader.uint64()
              break
            }
            case 10: {
              obj.intervalMs = reader.uint32()
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
          labels: 0,
          complete: 0,
          partial: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.version`,
                value: reader.string()
              }
              break
            }
            case 2: {
              if (opts.limits?.labels != null && obj.labels === opts.limits.labels) {
                throw new MaxLengthError('Streaming decode error - repeated field "labels" had too many elements')
              }

              for (const evt of StatusLabel.codec().stream(reader, reader.uint32(), `${prefix}.labels[]`, {
                limits: opts.limits?.labels$
              })) {
                yield {
                  ...evt,
                  index: obj.labels
                }
              }

              obj.labels++

              break
            }
            case 3: {
              if (opts.limits?.complete != null && obj.complete === opts.limits.complete) {
                throw new MaxLengthError('Streaming decode error - repeated field "complete" had too many elements')
              }

              yield {
                field: `${prefix}.complete[]`,
                index: obj.complete,
                value: reader.bytes()
              }

              obj.complete++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.completeCount`,
                value: reader.uint32()
              }
              break
            }
            case 5: {
              if (opts.limits?.partial != null && obj.partial === opts.limits.partial) {
                throw new MaxLengthError('Streaming decode error - repeated field "partial" had too many elements')
              }

              for (const evt of PartialBundle.codec().stream(reader, reader.uint32(), `${prefix}.partial[]`, {
                limits: opts.limits?.partial$
              })) {
                yield {
                  ...evt,
                  index: obj.partial
                }
              }

              obj.partial++

              break
            }
            case 6: {
              yield {
                field: `${prefix}.partialCount`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.freeBytes`,
                value: reader.uint64()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.uploadRate`,
                value: reader.uint64()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.downloadRate`,
                value: reader.uint64()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.intervalMs`,
                value: reader.uint32()
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

  export interface StatusBodyVersionFieldEvent {
    field: '$.version'
    value: string
  }

  export interface StatusBodyLabelsKeyFieldEvent {
    field: '$.labels[].key'
    value: string
    index: number
  }

  export interface StatusBodyLabelsValueFieldEvent {
    field: '$.labels[].value'
    value: string
    index: number
  }

  export interface StatusBodyCompleteFieldEvent {
    field: '$.complete[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface StatusBodyCompleteCountFieldEvent {
    field: '$.completeCount'
    value: number
  }

  export interface StatusBodyPartialIdFieldEvent {
    field: '$.partial[].id'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface StatusBodyPartialPermilleFieldEvent {
    field: '$.partial[].permille'
    value: number
    index: number
  }

  export interface StatusBodyPartialCountFieldEvent {
    field: '$.partialCount'
    value: number
  }

  export interface StatusBodyFreeBytesFieldEvent {
    field: '$.freeBytes'
    value: bigint
  }

  export interface StatusBodyUploadRateFieldEvent {
    field: '$.uploadRate'
    value: bigint
  }

  export interface StatusBodyDownloadRateFieldEvent {
    field: '$.downloadRate'
    value: bigint
  }

  export interface StatusBodyIntervalMsFieldEvent {
    field: '$.intervalMs'
    value: number
  }

  export function encode (obj: Partial<StatusBody>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StatusBody.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusBody>): StatusBody {
    return decodeMessage(buf, StatusBody.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusBody>): Generator<StatusBodyVersionFieldEvent | StatusBodyLabelsKeyFieldEvent | StatusBodyLabelsValueFieldEvent | StatusBodyCompleteFieldEvent | StatusBodyCompleteCountFieldEvent | StatusBodyPartialIdFieldEvent | StatusBodyPartialPermilleFieldEvent | StatusBodyPartialCountFieldEvent | StatusBodyFreeBytesFieldEvent | StatusBodyUploadRateFieldEvent | StatusBodyDownloadRateFieldEvent | StatusBodyIntervalMsFieldEvent> {
    return streamMessage(buf, StatusBody.codec(), opts)
  }
}

export interface StatusLabel {
  key: string
  value: string
}

export namespace StatusLabel {
  let _codec: Codec<StatusLabel, Partial<StatusLabel>>

  export const codec = (): Codec<StatusLabel, Partial<StatusLabel>> => {
    if (_codec == null) {
      _codec = message<StatusLabel, Partial<StatusLabel>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.key != null && obj.key !== '')) {
          w.uint32(10)
          w.string(obj.key)
        }

        if ((obj.value != null && obj.value !== '')) {
          w.uint32(18)
          w.string(obj.value)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          key: '',
          value: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.key = reader.string()
              break
            }
            case 2: {
              obj.value = reader.string()
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
                field: `${prefix}.key`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.value`,
                value: reader.string()
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

  export interface StatusLabelKeyFieldEvent {
    field: '$.key'
    value: string
  }

  export interface StatusLabelValueFieldEvent {
    field: '$.value'
    value: string
  }

  export function encode (obj: Partial<StatusLabel>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StatusLabel.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusLabel>): StatusLabel {
    return decodeMessage(buf, StatusLabel.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusLabel>): Generator<StatusLabelKeyFieldEvent | StatusLabelValueFieldEvent> {
    return streamMessage(buf, StatusLabel.codec(), opts)
  }
}

export interface PartialBundle {
  id: Uint8Array<ArrayBuffer>
  permille: number
}

export namespace PartialBundle {
  let _codec: Codec<PartialBundle, Partial<PartialBundle>>

  export const codec = (): Codec<PartialBundle, Partial<PartialBundle>> => {
    if (_codec == null) {
      _codec = message<PartialBundle, Partial<PartialBundle>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.id)
        }

        if ((obj.permille != null && obj.permille !== 0)) {
          w.uint32(16)
          w.uint32(obj.permille)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: uint8ArrayAlloc(0),
          permille: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.bytes()
              break
            }
            case 2: {
              obj.permille = reader.uint32()
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
                field: `${prefix}.id`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.permille`,
                value: reader.uint32()
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

  export interface PartialBundleIdFieldEvent {
    field: '$.id'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PartialBundlePermilleFieldEvent {
    field: '$.permille'
    value: number
  }

  export function encode (obj: Partial<PartialBundle>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PartialBundle.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PartialBundle>): PartialBundle {
    return decodeMessage(buf, PartialBundle.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PartialBundle>): Generator<PartialBundleIdFieldEvent | PartialBundlePermilleFieldEvent> {
    return streamMessage(buf, PartialBundle.codec(), opts)
  }
}

export interface StatusStamp {
  publisher: Uint8Array<ArrayBuffer>
  sequence: bigint
  bodyHash: Uint8Array<ArrayBuffer>
}

export namespace StatusStamp {
  let _codec: Codec<StatusStamp, Partial<StatusStamp>>

  export const codec = (): Codec<StatusStamp, Partial<StatusStamp>> => {
    if (_codec == null) {
      _codec = message<StatusStamp, Partial<StatusStamp>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.publisher != null && obj.publisher.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.publisher)
        }

        if ((obj.sequence != null && obj.sequence !== 0n)) {
          w.uint32(16)
          w.uint64(obj.sequence)
        }

        if ((obj.bodyHash != null && obj.bodyHash.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.bodyHash)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          publisher: uint8ArrayAlloc(0),
          sequence: 0n,
          bodyHash: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.publisher = reader.bytes()
              break
            }
            case 2: {
              obj.sequence = reader.uint64()
              break
            }
            case 3: {
              obj.bodyHash = reader.bytes()
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
                field: `${prefix}.publisher`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.sequence`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.bodyHash`,
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

  export interface StatusStampPublisherFieldEvent {
    field: '$.publisher'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StatusStampSequenceFieldEvent {
    field: '$.sequence'
    value: bigint
  }

  export interface StatusStampBodyHashFieldEvent {
    field: '$.bodyHash'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<StatusStamp>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StatusStamp.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusStamp>): StatusStamp {
    return decodeMessage(buf, StatusStamp.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusStamp>): Generator<StatusStampPublisherFieldEvent | StatusStampSequenceFieldEvent | StatusStampBodyHashFieldEvent> {
    return streamMessage(buf, StatusStamp.codec(), opts)
  }
}

export interface SignedStatus {
  stamp: Uint8Array<ArrayBuffer>
  signature: Uint8Array<ArrayBuffer>
  body: Uint8Array<ArrayBuffer>
  ageMs: number
}

export namespace SignedStatus {
  let _codec: Codec<SignedStatus, Partial<SignedStatus>>

  export const codec = (): Codec<SignedStatus, Partial<SignedStatus>> => {
    if (_codec == null) {
      _codec = message<SignedStatus, Partial<SignedStatus>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.stamp != null && obj.stamp.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.stamp)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.signature)
        }

        if ((obj.body != null && obj.body.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.body)
        }

        if ((obj.ageMs != null && obj.ageMs !== 0)) {
          w.uint32(32)
          w.uint32(obj.ageMs)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          stamp: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0),
          body: uint8ArrayAlloc(0),
          ageMs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.stamp = reader.bytes()
              break
            }
            case 2: {
              obj.signature = reader.bytes()
              break
            }
            case 3: {
              obj.body = reader.bytes()
              break
            }
            case 4: {
              obj.ageMs = reader.uint32()
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
                field: `${prefix}.stamp`,
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
            case 3: {
              yield {
                field: `${prefix}.body`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.ageMs`,
                value: reader.uint32()
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

  export interface SignedStatusStampFieldEvent {
    field: '$.stamp'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SignedStatusSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SignedStatusBodyFieldEvent {
    field: '$.body'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SignedStatusAgeMsFieldEvent {
    field: '$.ageMs'
    value: number
  }

  export function encode (obj: Partial<SignedStatus>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SignedStatus.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedStatus>): SignedStatus {
    return decodeMessage(buf, SignedStatus.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedStatus>): Generator<SignedStatusStampFieldEvent | SignedStatusSignatureFieldEvent | SignedStatusBodyFieldEvent | SignedStatusAgeMsFieldEvent> {
    return streamMessage(buf, SignedStatus.codec(), opts)
  }
}

export interface StatusRefresh {
  publisherTail: Uint8Array<ArrayBuffer>
  sequence: bigint
  signature: Uint8Array<ArrayBuffer>
  ageMs: number
}

export namespace StatusRefresh {
  let _codec: Codec<StatusRefresh, Partial<StatusRefresh>>

  export const codec = (): Codec<StatusRefresh, Partial<StatusRefresh>> => {
    if (_codec == null) {
      _codec = message<StatusRefresh, Partial<StatusRefresh>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.publisherTail != null && obj.publisherTail.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.publisherTail)
        }

        if ((obj.sequence != null && obj.sequence !== 0n)) {
          w.uint32(16)
          w.uint64(obj.sequence)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.signature)
        }

        if ((obj.ageMs != null && obj.ageMs !== 0)) {
          w.uint32(32)
          w.uint32(obj.ageMs)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          publisherTail: uint8ArrayAlloc(0),
          sequence: 0n,
          signature: uint8ArrayAlloc(0),
          ageMs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.publisherTail = reader.bytes()
              break
            }
            case 2: {
              obj.sequence = reader.uint64()
              break
            }
            case 3: {
              obj.signature = reader.bytes()
              break
            }
            case 4: {
              obj.ageMs = reader.uint32()
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
                field: `${prefix}.publisherTail`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.sequence`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.signature`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.ageMs`,
                value: reader.uint32()
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

  export interface StatusRefreshPublisherTailFieldEvent {
    field: '$.publisherTail'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StatusRefreshSequenceFieldEvent {
    field: '$.sequence'
    value: bigint
  }

  export interface StatusRefreshSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StatusRefreshAgeMsFieldEvent {
    field: '$.ageMs'
    value: number
  }

  export function encode (obj: Partial<StatusRefresh>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StatusRefresh.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusRefresh>): StatusRefresh {
    return decodeMessage(buf, StatusRefresh.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusRefresh>): Generator<StatusRefreshPublisherTailFieldEvent | StatusRefreshSequenceFieldEvent | StatusRefreshSignatureFieldEvent | StatusRefreshAgeMsFieldEvent> {
    return streamMessage(buf, StatusRefresh.codec(), opts)
  }
}

export interface AbsenceStamp {
  witness: Uint8Array<ArrayBuffer>
  subject: Uint8Array<ArrayBuffer>
  subjectSequence: bigint
}

export namespace AbsenceStamp {
  let _codec: Codec<AbsenceStamp, Partial<AbsenceStamp>>

  export const codec = (): Codec<AbsenceStamp, Partial<AbsenceStamp>> => {
    if (_codec == null) {
      _codec = message<AbsenceStamp, Partial<AbsenceStamp>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.witness != null && obj.witness.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.witness)
        }

        if ((obj.subject != null && obj.subject.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.subject)
        }

        if ((obj.subjectSequence != null && obj.subjectSequence !== 0n)) {
          w.uint32(24)
          w.uint64(obj.subjectSequence)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          witness: uint8ArrayAlloc(0),
          subject: uint8ArrayAlloc(0),
          subjectSequence: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.witness = reader.bytes()
              break
            }
            case 2: {
              obj.subject = reader.bytes()
              break
            }
            case 3: {
              obj.subjectSequence = reader.uint64()
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
                field: `${prefix}.witness`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.subject`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.subjectSequence`,
                value: reader.uint64()
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

  export interface AbsenceStampWitnessFieldEvent {
    field: '$.witness'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AbsenceStampSubjectFieldEvent {
    field: '$.subject'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AbsenceStampSubjectSequenceFieldEvent {
    field: '$.subjectSequence'
    value: bigint
  }

  export function encode (obj: Partial<AbsenceStamp>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, AbsenceStamp.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AbsenceStamp>): AbsenceStamp {
    return decodeMessage(buf, AbsenceStamp.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AbsenceStamp>): Generator<AbsenceStampWitnessFieldEvent | AbsenceStampSubjectFieldEvent | AbsenceStampSubjectSequenceFieldEvent> {
    return streamMessage(buf, AbsenceStamp.codec(), opts)
  }
}

export interface AbsenceNotice {
  witnessTail: Uint8Array<ArrayBuffer>
  subjectTail: Uint8Array<ArrayBuffer>
  subjectSequence: bigint
  signature: Uint8Array<ArrayBuffer>
  ageMs: number
}

export namespace AbsenceNotice {
  let _codec: Codec<AbsenceNotice, Partial<AbsenceNotice>>

  export const codec = (): Codec<AbsenceNotice, Partial<AbsenceNotice>> => {
    if (_codec == null) {
      _codec = message<AbsenceNotice, Partial<AbsenceNotice>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.witnessTail != null && obj.witnessTail.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.witnessTail)
        }

        if ((obj.subjectTail != null && obj.subjectTail.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.subjectTail)
        }

        if ((obj.subjectSequence != null && obj.subjectSequence !== 0n)) {
          w.uint32(24)
          w.uint64(obj.subjectSequence)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.signature)
        }

        if ((obj.ageMs != null && obj.ageMs !== 0)) {
          w.uint32(40)
          w.uint32(obj.ageMs)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          witnessTail: uint8ArrayAlloc(0),
          subjectTail: uint8ArrayAlloc(0),
          subjectSequence: 0n,
          signature: uint8ArrayAlloc(0),
          ageMs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.witnessTail = reader.bytes()
              break
            }
            case 2: {
              obj.subjectTail = reader.bytes()
              break
            }
            case 3: {
              obj.subjectSequence = reader.uint64()
              break
            }
            case 4: {
              obj.signature = reader.bytes()
              break
            }
            case 5: {
              obj.ageMs = reader.uint32()
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
                field: `${prefix}.witnessTail`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.subjectTail`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.subjectSequence`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.signature`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.ageMs`,
                value: reader.uint32()
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

  export interface AbsenceNoticeWitnessTailFieldEvent {
    field: '$.witnessTail'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AbsenceNoticeSubjectTailFieldEvent {
    field: '$.subjectTail'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AbsenceNoticeSubjectSequenceFieldEvent {
    field: '$.subjectSequence'
    value: bigint
  }

  export interface AbsenceNoticeSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AbsenceNoticeAgeMsFieldEvent {
    field: '$.ageMs'
    value: number
  }

  export function encode (obj: Partial<AbsenceNotice>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, AbsenceNotice.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AbsenceNotice>): AbsenceNotice {
    return decodeMessage(buf, AbsenceNotice.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AbsenceNotice>): Generator<AbsenceNoticeWitnessTailFieldEvent | AbsenceNoticeSubjectTailFieldEvent | AbsenceNoticeSubjectSequenceFieldEvent | AbsenceNoticeSignatureFieldEvent | AbsenceNoticeAgeMsFieldEvent> {
    return streamMessage(buf, AbsenceNotice.codec(), opts)
  }
}

export interface StatusDigest {
  tails: Uint8Array<ArrayBuffer>
  bodyPrefixes: Uint8Array<ArrayBuffer>
  sequences: bigint[]
}

export namespace StatusDigest {
  let _codec: Codec<StatusDigest, Partial<StatusDigest>>

  export const codec = (): Codec<StatusDigest, Partial<StatusDigest>> => {
    if (_codec == null) {
      _codec = message<StatusDigest, Partial<StatusDigest>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.tails != null && obj.tails.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.tails)
        }

        if ((obj.bodyPrefixes != null && obj.bodyPrefixes.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.bodyPrefixes)
        }

        if (obj.sequences != null && obj.sequences.length > 0) {
          for (const value of obj.sequences) {
            w.uint32(24)
            w.uint64(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          tails: uint8ArrayAlloc(0),
          bodyPrefixes: uint8ArrayAlloc(0),
          sequences: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.tails = reader.bytes()
              break
            }
            case 2: {
              obj.bodyPrefixes = reader.bytes()
              break
            }
            case 3: {
              if (opts.limits?.sequences != null && obj.sequences.length === opts.limits.sequences) {
                throw new MaxLengthError('Decode error - repeated field "sequences" had too many elements')
              }

              obj.sequences.push(reader.uint64())
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
          sequences: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.tails`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.bodyPrefixes`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              if (opts.limits?.sequences != null && obj.sequences === opts.limits.sequences) {
                throw new MaxLengthError('Streaming decode error - repeated field "sequences" had too many elements')
              }

              yield {
                field: `${prefix}.sequences[]`,
                index: obj.sequences,
                value: reader.uint64()
              }

              obj.sequences++

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

  export interface StatusDigestTailsFieldEvent {
    field: '$.tails'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StatusDigestBodyPrefixesFieldEvent {
    field: '$.bodyPrefixes'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StatusDigestSequencesFieldEvent {
    field: '$.sequences[]'
    index: number
    value: bigint
  }

  export function encode (obj: Partial<StatusDigest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StatusDigest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusDigest>): StatusDigest {
    return decodeMessage(buf, StatusDigest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusDigest>): Generator<StatusDigestTailsFieldEvent | StatusDigestBodyPrefixesFieldEvent | StatusDigestSequencesFieldEvent> {
    return streamMessage(buf, StatusDigest.codec(), opts)
  }
}

export interface StatusBatch {
  statuses: SignedStatus[]
  refreshes: StatusRefresh[]
  notices: AbsenceNotice[]
  digest?: StatusDigest
  answersDigest: boolean
}

export namespace StatusBatch {
  let _codec: Codec<StatusBatch, Partial<StatusBatch>>

  export const codec = (): Codec<StatusBatch, Partial<StatusBatch>> => {
    if (_codec == null) {
      _codec = message<StatusBatch, Partial<StatusBatch>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.statuses != null && obj.statuses.length > 0) {
          for (const value of obj.statuses) {
            w.uint32(10)
            SignedStatus.codec().encode(value, w)
          }
        }

        if (obj.refreshes != null && obj.refreshes.length > 0) {
          for (const value of obj.refreshes) {
            w.uint32(18)
            StatusRefresh.codec().encode(value, w)
          }
        }

        if (obj.notices != null && obj.notices.length > 0) {
          for (const value of obj.notices) {
            w.uint32(26)
            AbsenceNotice.codec().encode(value, w)
          }
        }

        if (obj.digest != null) {
          w.uint32(34)
          StatusDigest.codec().encode(obj.digest, w)
        }

        if ((obj.answersDigest != null && obj.answersDigest !== false)) {
          w.uint32(40)
          w.bool(obj.answersDigest)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          statuses: [],
          refreshes: [],
          notices: [],
          answersDigest: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.statuses != null && obj.statuses.length === opts.limits.statuses) {
                throw new MaxLengthError('Decode error - repeated field "statuses" had too many elements')
              }

              obj.statuses.push(SignedStatus.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.statuses$
              }))
              break
            }
            case 2: {
              if (opts.limits?.refreshes != null && obj.refreshes.length === opts.limits.refreshes) {
                throw new MaxLengthError('Decode error - repeated field "refreshes" had too many elements')
              }

              obj.refreshes.push(StatusRefresh.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.refreshes$
              }))
              break
            }
            case 3: {
              if (opts.limits?.notices != null && obj.notices.length === opts.limits.notices) {
                throw new MaxLengthError('Decode error - repeated field "notices" had too many elements')
              }

              obj.notices.push(AbsenceNotice.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.notices$
              }))
              break
            }
            case 4: {
              obj.digest = StatusDigest.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.digest
              })
              break
            }
            case 5: {
              obj.answersDigest = reader.bool()
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
          statuses: 0,
          refreshes: 0,
          notices: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.statuses != null && obj.statuses === opts.limits.statuses) {
                throw new MaxLengthError('Streaming decode error - repeated field "statuses" had too many elements')
              }

              for (const evt of SignedStatus.codec().stream(reader, reader.uint32(), `${prefix}.statuses[]`, {
                limits: opts.limits?.statuses$
              })) {
                yield {
                  ...evt,
                  index: obj.statuses
                }
              }

              obj.statuses++

              break
            }
            case 2: {
              if (opts.limits?.refreshes != null && obj.refreshes === opts.limits.refreshes) {
                throw new MaxLengthError('Streaming decode error - repeated field "refreshes" had too many elements')
              }

              for (const evt of StatusRefresh.codec().stream(reader, reader.uint32(), `${prefix}.refreshes[]`, {
                limits: opts.limits?.refreshes$
              })) {
                yield {
                  ...evt,
                  index: obj.refreshes
                }
              }

              obj.refreshes++

              break
            }
            case 3: {
              if (opts.limits?.notices != null && obj.notices === opts.limits.notices) {
                throw new MaxLengthError('Streaming decode error - repeated field "notices" had too many elements')
              }

              for (const evt of AbsenceNotice.codec().stream(reader, reader.uint32(), `${prefix}.notices[]`, {
                limits: opts.limits?.notices$
              })) {
                yield {
                  ...evt,
                  index: obj.notices
                }
              }

              obj.notices++

              break
            }
            case 4: {
              yield * StatusDigest.codec().stream(reader, reader.uint32(), `${prefix}.digest`, {
                limits: opts.limits?.digest
              })

              break
            }
            case 5: {
              yield {
                field: `${prefix}.answersDigest`,
                value: reader.bool()
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

  export interface StatusBatchStatusesStampFieldEvent {
    field: '$.statuses[].stamp'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface StatusBatchStatusesSignatureFieldEvent {
    field: '$.statuses[].signature'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface StatusBatchStatusesBodyFieldEvent {
    field: '$.statuses[].body'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface StatusBatchStatusesAgeMsFieldEvent {
    field: '$.statuses[].ageMs'
    value: number
    index: number
  }

  export interface StatusBatchRefreshesPublisherTailFieldEvent {
    field: '$.refreshes[].publisherTail'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface StatusBatchRefreshesSequenceFieldEvent {
    field: '$.refreshes[].sequence'
    value: bigint
    index: number
  }

  export interface StatusBatchRefreshesSignatureFieldEvent {
    field: '$.refreshes[].signature'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface StatusBatchRefreshesAgeMsFieldEvent {
    field: '$.refreshes[].ageMs'
    value: number
    index: number
  }

  export interface StatusBatchNoticesWitnessTailFieldEvent {
    field: '$.notices[].witnessTail'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface StatusBatchNoticesSubjectTailFieldEvent {
    field: '$.notices[].subjectTail'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface StatusBatchNoticesSubjectSequenceFieldEvent {
    field: '$.notices[].subjectSequence'
    value: bigint
    index: number
  }

  export interface StatusBatchNoticesSignatureFieldEvent {
    field: '$.notices[].signature'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface StatusBatchNoticesAgeMsFieldEvent {
    field: '$.notices[].ageMs'
    value: number
    index: number
  }

  export interface StatusBatchDigestTailsFieldEvent {
    field: '$.digest.tails'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StatusBatchDigestBodyPrefixesFieldEvent {
    field: '$.digest.bodyPrefixes'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StatusBatchDigestSequencesFieldEvent {
    field: '$.digest.sequences[]'
    index: number
    value: bigint
  }

  export interface StatusBatchAnswersDigestFieldEvent {
    field: '$.answersDigest'
    value: boolean
  }

  export function encode (obj: Partial<StatusBatch>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StatusBatch.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusBatch>): StatusBatch {
    return decodeMessage(buf, StatusBatch.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StatusBatch>): Generator<StatusBatchStatusesStampFieldEvent | StatusBatchStatusesSignatureFieldEvent | StatusBatchStatusesBodyFieldEvent | StatusBatchStatusesAgeMsFieldEvent | StatusBatchRefreshesPublisherTailFieldEvent | StatusBatchRefreshesSequenceFieldEvent | StatusBatchRefreshesSignatureFieldEvent | StatusBatchRefreshesAgeMsFieldEvent | StatusBatchNoticesWitnessTailFieldEvent | StatusBatchNoticesSubjectTailFieldEvent | StatusBatchNoticesSubjectSequenceFieldEvent | StatusBatchNoticesSignatureFieldEvent | StatusBatchNoticesAgeMsFieldEvent | StatusBatchDigestTailsFieldEvent | StatusBatchDigestBodyPrefixesFieldEvent | StatusBatchDigestSequencesFieldEvent | StatusBatchAnswersDigestFieldEvent> {
    return streamMessage(buf, StatusBatch.codec(), opts)
  }
}
