import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface FleetBlobRequest {
  registry: string
  repository: string
  digest: string
  offset: bigint
  direct: boolean
  progress: boolean
}

export namespace FleetBlobRequest {
  let _codec: Codec<FleetBlobRequest, Partial<FleetBlobRequest>>

  export const codec = (): Codec<FleetBlobRequest, Partial<FleetBlobRequest>> => {
    if (_codec == null) {
      _codec = message<FleetBlobRequest, Partial<FleetBlobRequest>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.registry != null && obj.registry !== '')) {
          w.uint32(10)
          w.string(obj.registry)
        }

        if ((obj.repository != null && obj.repository !== '')) {
          w.uint32(18)
          w.string(obj.repository)
        }

        if ((obj.digest != null && obj.digest !== '')) {
          w.uint32(26)
          w.string(obj.digest)
        }

        if ((obj.offset != null && obj.offset !== 0n)) {
          w.uint32(32)
          w.uint64(obj.offset)
        }

        if ((obj.direct != null && obj.direct !== false)) {
          w.uint32(40)
          w.bool(obj.direct)
        }

        if ((obj.progress != null && obj.progress !== false)) {
          w.uint32(48)
          w.bool(obj.progress)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          registry: '',
          repository: '',
          digest: '',
          offset: 0n,
          direct: false,
          progress: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.registry = reader.string()
              break
            }
            case 2: {
              obj.repository = reader.string()
              break
            }
            case 3: {
              obj.digest = reader.string()
              break
            }
            case 4: {
              obj.offset = reader.uint64()
              break
            }
            case 5: {
              obj.direct = reader.bool()
              break
            }
            case 6: {
              obj.progress = reader.bool()
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
                field: `${prefix}.registry`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.repository`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.digest`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.offset`,
                value: reader.uint64()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.direct`,
                value: reader.bool()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.progress`,
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

  export interface FleetBlobRequestRegistryFieldEvent {
    field: '$.registry'
    value: string
  }

  export interface FleetBlobRequestRepositoryFieldEvent {
    field: '$.repository'
    value: string
  }

  export interface FleetBlobRequestDigestFieldEvent {
    field: '$.digest'
    value: string
  }

  export interface FleetBlobRequestOffsetFieldEvent {
    field: '$.offset'
    value: bigint
  }

  export interface FleetBlobRequestDirectFieldEvent {
    field: '$.direct'
    value: boolean
  }

  export interface FleetBlobRequestProgressFieldEvent {
    field: '$.progress'
    value: boolean
  }

  export function encode (obj: Partial<FleetBlobRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, FleetBlobRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FleetBlobRequest>): FleetBlobRequest {
    return decodeMessage(buf, FleetBlobRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FleetBlobRequest>): Generator<FleetBlobRequestRegistryFieldEvent | FleetBlobRequestRepositoryFieldEvent | FleetBlobRequestDigestFieldEvent | FleetBlobRequestOffsetFieldEvent | FleetBlobRequestDirectFieldEvent | FleetBlobRequestProgressFieldEvent> {
    return streamMessage(buf, FleetBlobRequest.codec(), opts)
  }
}

export interface FleetBlobFrame {
  kind: FleetBlobFrame.Kind
  size: bigint
  data: Uint8Array<ArrayBuffer>
  reason: string
  sizeUnknown: boolean
  relayPeer: string
  relayAddrs: string[]
  held?: bigint
  relayAnswering: boolean
  relayHeld?: bigint
  bytesPerSecond?: bigint
}

export namespace FleetBlobFrame {
  export enum Kind {
    HEADER = 'HEADER',
    DATA = 'DATA',
    END = 'END',
    NOT_FOUND = 'NOT_FOUND',
    UNAVAILABLE = 'UNAVAILABLE',
    FAILED = 'FAILED',
    RELAY = 'RELAY',
    PROGRESS = 'PROGRESS'
  }

  enum __KindValues {
    HEADER = 0,
    DATA = 1,
    END = 2,
    NOT_FOUND = 3,
    UNAVAILABLE = 4,
    FAILED = 5,
    RELAY = 6,
    PROGRESS = 7
  }

  export namespace Kind {
    export const codec = (): Codec<Kind, Partial<Kind>> => {
      return enumeration<Kind>(__KindValues)
    }
  }

  let _codec: Codec<FleetBlobFrame, Partial<FleetBlobFrame>>

  export const codec = (): Codec<FleetBlobFrame, Partial<FleetBlobFrame>> => {
    if (_codec == null) {
      _codec = message<FleetBlobFrame, Partial<FleetBlobFrame>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.kind != null && __KindValues[obj.kind] !== 0) {
          w.uint32(8)
          FleetBlobFrame.Kind.codec().encode(obj.kind, w)
        }

        if ((obj.size != null && obj.size !== 0n)) {
          w.uint32(16)
          w.uint64(obj.size)
        }

        if ((obj.data != null && obj.data.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.data)
        }

        if ((obj.reason != null && obj.reason !== '')) {
          w.uint32(34)
          w.string(obj.reason)
        }

        if ((obj.sizeUnknown != null && obj.sizeUnknown !== false)) {
          w.uint32(40)
          w.bool(obj.sizeUnknown)
        }

        if ((obj.relayPeer != null && obj.relayPeer !== '')) {
          w.uint32(50)
          w.string(obj.relayPeer)
        }

        if (obj.relayAddrs != null && obj.relayAddrs.length > 0) {
          for (const value of obj.relayAddrs) {
            w.uint32(58)
            w.string(value)
          }
        }

        if (obj.held != null) {
          w.uint32(64)
          w.uint64(obj.held)
        }

        if ((obj.relayAnswering != null && obj.relayAnswering !== false)) {
          w.uint32(72)
          w.bool(obj.relayAnswering)
        }

        if (obj.relayHeld != null) {
          w.uint32(80)
          w.uint64(obj.relayHeld)
        }

        if (obj.bytesPerSecond != null) {
          w.uint32(88)
          w.uint64(obj.bytesPerSecond)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          kind: Kind.HEADER,
          size: 0n,
          data: uint8ArrayAlloc(0),
          reason: '',
          sizeUnknown: false,
          relayPeer: '',
          relayAddrs: [],
          relayAnswering: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.kind = FleetBlobFrame.Kind.codec().decode(reader)
              break
            }
            case 2: {
              obj.size = reader.uint64()
              break
            }
            case 3: {
              obj.data = reader.bytes()
              break
            }
            case 4: {
              obj.reason = reader.string()
              break
            }
            case 5: {
              obj.sizeUnknown = reader.bool()
              break
            }
            case 6: {
              obj.relayPeer = reader.string()
              break
            }
            case 7: {
              if (opts.limits?.relayAddrs != null && obj.relayAddrs.length === opts.limits.relayAddrs) {
                throw new MaxLengthError('Decode error - repeated field "relayAddrs" had too many elements')
              }

              obj.relayAddrs.push(reader.string())
              break
            }
            case 8: {
              obj.held = reader.uint64()
              break
            }
            case 9: {
              obj.relayAnswering = reader.bool()
              break
            }
            case 10: {
              obj.relayHeld = reader.uint64()
              break
            }
            case 11: {
              obj.bytesPerSecond = reader.uint64()
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
          relayAddrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.kind`,
                value: FleetBlobFrame.Kind.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.size`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.data`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.reason`,
                value: reader.string()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.sizeUnknown`,
                value: reader.bool()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.relayPeer`,
                value: reader.string()
              }
              break
            }
            case 7: {
              if (opts.limits?.relayAddrs != null && obj.relayAddrs === opts.limits.relayAddrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "relayAddrs" had too many elements')
              }

              yield {
                field: `${prefix}.relayAddrs[]`,
                index: obj.relayAddrs,
                value: reader.string()
              }

              obj.relayAddrs++

              break
            }
            case 8: {
              yield {
                field: `${prefix}.held`,
                value: reader.uint64()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.relayAnswering`,
                value: reader.bool()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.relayHeld`,
                value: reader.uint64()
              }
              break
            }
            case 11: {
              yield {
                field: `${prefix}.bytesPerSecond`,
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

  export interface FleetBlobFrameKindFieldEvent {
    field: '$.kind'
    value: FleetBlobFrame.Kind
  }

  export interface FleetBlobFrameSizeFieldEvent {
    field: '$.size'
    value: bigint
  }

  export interface FleetBlobFrameDataFieldEvent {
    field: '$.data'
    value: Uint8Array<ArrayBuffer>
  }

  export interface FleetBlobFrameReasonFieldEvent {
    field: '$.reason'
    value: string
  }

  export interface FleetBlobFrameSizeUnknownFieldEvent {
    field: '$.sizeUnknown'
    value: boolean
  }

  export interface FleetBlobFrameRelayPeerFieldEvent {
    field: '$.relayPeer'
    value: string
  }

  export interface FleetBlobFrameRelayAddrsFieldEvent {
    field: '$.relayAddrs[]'
    index: number
    value: string
  }

  export interface FleetBlobFrameHeldFieldEvent {
    field: '$.held'
    value: bigint
  }

  export interface FleetBlobFrameRelayAnsweringFieldEvent {
    field: '$.relayAnswering'
    value: boolean
  }

  export interface FleetBlobFrameRelayHeldFieldEvent {
    field: '$.relayHeld'
    value: bigint
  }

  export interface FleetBlobFrameBytesPerSecondFieldEvent {
    field: '$.bytesPerSecond'
    value: bigint
  }

  export function encode (obj: Partial<FleetBlobFrame>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, FleetBlobFrame.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FleetBlobFrame>): FleetBlobFrame {
    return decodeMessage(buf, FleetBlobFrame.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FleetBlobFrame>): Generator<FleetBlobFrameKindFieldEvent | FleetBlobFrameSizeFieldEvent | FleetBlobFrameDataFieldEvent | FleetBlobFrameReasonFieldEvent | FleetBlobFrameSizeUnknownFieldEvent | FleetBlobFrameRelayPeerFieldEvent | FleetBlobFrameRelayAddrsFieldEvent | FleetBlobFrameHeldFieldEvent | FleetBlobFrameRelayAnsweringFieldEvent | FleetBlobFrameRelayHeldFieldEvent | FleetBlobFrameBytesPerSecondFieldEvent> {
    return streamMessage(buf, FleetBlobFrame.codec(), opts)
  }
}

export interface FleetBlobAck {
  consumed: bigint
  relayAnswered: boolean
}

export namespace FleetBlobAck {
  let _codec: Codec<FleetBlobAck, Partial<FleetBlobAck>>

  export const codec = (): Codec<FleetBlobAck, Partial<FleetBlobAck>> => {
    if (_codec == null) {
      _codec = message<FleetBlobAck, Partial<FleetBlobAck>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.consumed != null && obj.consumed !== 0n)) {
          w.uint32(8)
          w.uint64(obj.consumed)
        }

        if ((obj.relayAnswered != null && obj.relayAnswered !== false)) {
          w.uint32(16)
          w.bool(obj.relayAnswered)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          consumed: 0n,
          relayAnswered: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.consumed = reader.uint64()
              break
            }
            case 2: {
              obj.relayAnswered = reader.bool()
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
                field: `${prefix}.consumed`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.relayAnswered`,
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

  export interface FleetBlobAckConsumedFieldEvent {
    field: '$.consumed'
    value: bigint
  }

  export interface FleetBlobAckRelayAnsweredFieldEvent {
    field: '$.relayAnswered'
    value: boolean
  }

  export function encode (obj: Partial<FleetBlobAck>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, FleetBlobAck.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FleetBlobAck>): FleetBlobAck {
    return decodeMessage(buf, FleetBlobAck.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FleetBlobAck>): Generator<FleetBlobAckConsumedFieldEvent | FleetBlobAckRelayAnsweredFieldEvent> {
    return streamMessage(buf, FleetBlobAck.codec(), opts)
  }
}
