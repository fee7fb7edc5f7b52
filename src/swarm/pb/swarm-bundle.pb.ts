import { decodeMessage, encodeMessage, enumeration, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface BundleRequest {
  bundleId: Uint8Array<ArrayBuffer>
}

export namespace BundleRequest {
  let _codec: Codec<BundleRequest, Partial<BundleRequest>>

  export const codec = (): Codec<BundleRequest, Partial<BundleRequest>> => {
    if (_codec == null) {
      _codec = message<BundleRequest, Partial<BundleRequest>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.bundleId != null && obj.bundleId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.bundleId)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          bundleId: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.bundleId = reader.bytes()
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

  export interface BundleRequestBundleIdFieldEvent {
    field: '$.bundleId'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<BundleRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, BundleRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BundleRequest>): BundleRequest {
    return decodeMessage(buf, BundleRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BundleRequest>): Generator<BundleRequestBundleIdFieldEvent> {
    return streamMessage(buf, BundleRequest.codec(), opts)
  }
}

export interface BundleResponse {
  status: BundleResponse.Status
  totalBytes: bigint
}

export namespace BundleResponse {
  export enum Status {
    STATUS_UNSPECIFIED = 'STATUS_UNSPECIFIED',
    OK = 'OK',
    NOT_FOUND = 'NOT_FOUND'
  }

  enum __StatusValues {
    STATUS_UNSPECIFIED = 0,
    OK = 1,
    NOT_FOUND = 2
  }

  export namespace Status {
    export const codec = (): Codec<Status, Partial<Status>> => {
      return enumeration<Status>(__StatusValues)
    }
  }

  let _codec: Codec<BundleResponse, Partial<BundleResponse>>

  export const codec = (): Codec<BundleResponse, Partial<BundleResponse>> => {
    if (_codec == null) {
      _codec = message<BundleResponse, Partial<BundleResponse>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.status != null && __StatusValues[obj.status] !== 0) {
          w.uint32(8)
          BundleResponse.Status.codec().encode(obj.status, w)
        }

        if ((obj.totalBytes != null && obj.totalBytes !== 0n)) {
          w.uint32(16)
          w.uint64(obj.totalBytes)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          status: Status.STATUS_UNSPECIFIED,
          totalBytes: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.status = BundleResponse.Status.codec().decode(reader)
              break
            }
            case 2: {
              obj.totalBytes = reader.uint64()
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
                field: `${prefix}.status`,
                value: BundleResponse.Status.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.totalBytes`,
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

  export interface BundleResponseStatusFieldEvent {
    field: '$.status'
    value: BundleResponse.Status
  }

  export interface BundleResponseTotalBytesFieldEvent {
    field: '$.totalBytes'
    value: bigint
  }

  export function encode (obj: Partial<BundleResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, BundleResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BundleResponse>): BundleResponse {
    return decodeMessage(buf, BundleResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BundleResponse>): Generator<BundleResponseStatusFieldEvent | BundleResponseTotalBytesFieldEvent> {
    return streamMessage(buf, BundleResponse.codec(), opts)
  }
}

export interface BundlePart {
  data: Uint8Array<ArrayBuffer>
}

export namespace BundlePart {
  let _codec: Codec<BundlePart, Partial<BundlePart>>

  export const codec = (): Codec<BundlePart, Partial<BundlePart>> => {
    if (_codec == null) {
      _codec = message<BundlePart, Partial<BundlePart>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.data != null && obj.data.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.data)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          data: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
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

  export interface BundlePartDataFieldEvent {
    field: '$.data'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<BundlePart>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, BundlePart.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BundlePart>): BundlePart {
    return decodeMessage(buf, BundlePart.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BundlePart>): Generator<BundlePartDataFieldEvent> {
    return streamMessage(buf, BundlePart.codec(), opts)
  }
}
