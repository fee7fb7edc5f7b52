import { decodeMessage, encodeMessage, enumeration, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface ChunkRequest {
  object: Uint8Array<ArrayBuffer>
  index: number
  cancel: boolean
}

export namespace ChunkRequest {
  let _codec: Codec<ChunkRequest, Partial<ChunkRequest>>

  export const codec = (): Codec<ChunkRequest, Partial<ChunkRequest>> => {
    if (_codec == null) {
      _codec = message<ChunkRequest, Partial<ChunkRequest>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.object != null && obj.object.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.object)
        }

        if ((obj.index != null && obj.index !== 0)) {
          w.uint32(16)
          w.uint32(obj.index)
        }

        if ((obj.cancel != null && obj.cancel !== false)) {
          w.uint32(24)
          w.bool(obj.cancel)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          object: uint8ArrayAlloc(0),
          index: 0,
          cancel: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.object = reader.bytes()
              break
            }
            case 2: {
              obj.index = reader.uint32()
              break
            }
            case 3: {
              obj.cancel = reader.bool()
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
                field: `${prefix}.object`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.index`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.cancel`,
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

  export interface ChunkRequestObjectFieldEvent {
    field: '$.object'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ChunkRequestIndexFieldEvent {
    field: '$.index'
    value: number
  }

  export interface ChunkRequestCancelFieldEvent {
    field: '$.cancel'
    value: boolean
  }

  export function encode (obj: Partial<ChunkRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ChunkRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ChunkRequest>): ChunkRequest {
    return decodeMessage(buf, ChunkRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ChunkRequest>): Generator<ChunkRequestObjectFieldEvent | ChunkRequestIndexFieldEvent | ChunkRequestCancelFieldEvent> {
    return streamMessage(buf, ChunkRequest.codec(), opts)
  }
}

export interface ChunkResponse {
  object: Uint8Array<ArrayBuffer>
  index: number
  status: ChunkResponse.Status
  data: Uint8Array<ArrayBuffer>
}

export namespace ChunkResponse {
  export enum Status {
    STATUS_UNSPECIFIED = 'STATUS_UNSPECIFIED',
    OK = 'OK',
    NOT_PRESENT = 'NOT_PRESENT',
    CANCELLED = 'CANCELLED',
    DEFERRED = 'DEFERRED'
  }

  enum __StatusValues {
    STATUS_UNSPECIFIED = 0,
    OK = 1,
    NOT_PRESENT = 2,
    CANCELLED = 3,
    DEFERRED = 4
  }

  export namespace Status {
    export const codec = (): Codec<Status, Partial<Status>> => {
      return enumeration<Status>(__StatusValues)
    }
  }

  let _codec: Codec<ChunkResponse, Partial<ChunkResponse>>

  export const codec = (): Codec<ChunkResponse, Partial<ChunkResponse>> => {
    if (_codec == null) {
      _codec = message<ChunkResponse, Partial<ChunkResponse>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.object != null && obj.object.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.object)
        }

        if ((obj.index != null && obj.index !== 0)) {
          w.uint32(16)
          w.uint32(obj.index)
        }

        if (obj.status != null && __StatusValues[obj.status] !== 0) {
          w.uint32(24)
          ChunkResponse.Status.codec().encode(obj.status, w)
        }

        if ((obj.data != null && obj.data.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.data)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          object: uint8ArrayAlloc(0),
          index: 0,
          status: Status.STATUS_UNSPECIFIED,
          data: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.object = reader.bytes()
              break
            }
            case 2: {
              obj.index = reader.uint32()
              break
            }
            case 3: {
              obj.status = ChunkResponse.Status.codec().decode(reader)
              break
            }
            case 4: {
              obj.data = reader.bytes()
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
                field: `${prefix}.object`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.index`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.status`,
                value: ChunkResponse.Status.codec().decode(reader)
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.data`,
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

  export interface ChunkResponseObjectFieldEvent {
    field: '$.object'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ChunkResponseIndexFieldEvent {
    field: '$.index'
    value: number
  }

  export interface ChunkResponseStatusFieldEvent {
    field: '$.status'
    value: ChunkResponse.Status
  }

  export interface ChunkResponseDataFieldEvent {
    field: '$.data'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<ChunkResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ChunkResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ChunkResponse>): ChunkResponse {
    return decodeMessage(buf, ChunkResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ChunkResponse>): Generator<ChunkResponseObjectFieldEvent | ChunkResponseIndexFieldEvent | ChunkResponseStatusFieldEvent | ChunkResponseDataFieldEvent> {
    return streamMessage(buf, ChunkResponse.codec(), opts)
  }
}
