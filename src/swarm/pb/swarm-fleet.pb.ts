import { decodeMessage, encodeMessage, enumeration, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface FleetRequest {
  kind: FleetRequest.Kind
  registry: string
  repository: string
  reference: string
  pullThrough: boolean
  manifest: boolean
}

export namespace FleetRequest {
  export enum Kind {
    FIND_DIGEST = 'FIND_DIGEST',
    RESOLVE_TAG = 'RESOLVE_TAG'
  }

  enum __KindValues {
    FIND_DIGEST = 0,
    RESOLVE_TAG = 1
  }

  export namespace Kind {
    export const codec = (): Codec<Kind, Partial<Kind>> => {
      return enumeration<Kind>(__KindValues)
    }
  }

  let _codec: Codec<FleetRequest, Partial<FleetRequest>>

  export const codec = (): Codec<FleetRequest, Partial<FleetRequest>> => {
    if (_codec == null) {
      _codec = message<FleetRequest, Partial<FleetRequest>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.kind != null && __KindValues[obj.kind] !== 0) {
          w.uint32(8)
          FleetRequest.Kind.codec().encode(obj.kind, w)
        }

        if ((obj.registry != null && obj.registry !== '')) {
          w.uint32(18)
          w.string(obj.registry)
        }

        if ((obj.repository != null && obj.repository !== '')) {
          w.uint32(26)
          w.string(obj.repository)
        }

        if ((obj.reference != null && obj.reference !== '')) {
          w.uint32(34)
          w.string(obj.reference)
        }

        if ((obj.pullThrough != null && obj.pullThrough !== false)) {
          w.uint32(40)
          w.bool(obj.pullThrough)
        }

        if ((obj.manifest != null && obj.manifest !== false)) {
          w.uint32(48)
          w.bool(obj.manifest)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          kind: Kind.FIND_DIGEST,
          registry: '',
          repository: '',
          reference: '',
          pullThrough: false,
          manifest: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.kind = FleetRequest.Kind.codec().decode(reader)
              break
            }
            case 2: {
              obj.registry = reader.string()
              break
            }
            case 3: {
              obj.repository = reader.string()
              break
            }
            case 4: {
              obj.reference = reader.string()
              break
            }
            case 5: {
              obj.pullThrough = reader.bool()
              break
            }
            case 6: {
              obj.manifest = reader.bool()
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
                field: `${prefix}.kind`,
                value: FleetRequest.Kind.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.registry`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.repository`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.reference`,
                value: reader.string()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.pullThrough`,
                value: reader.bool()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.manifest`,
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

  export interface FleetRequestKindFieldEvent {
    field: '$.kind'
    value: FleetRequest.Kind
  }

  export interface FleetRequestRegistryFieldEvent {
    field: '$.registry'
    value: string
  }

  export interface FleetRequestRepositoryFieldEvent {
    field: '$.repository'
    value: string
  }

  export interface FleetRequestReferenceFieldEvent {
    field: '$.reference'
    value: string
  }

  export interface FleetRequestPullThroughFieldEvent {
    field: '$.pullThrough'
    value: boolean
  }

  export interface FleetRequestManifestFieldEvent {
    field: '$.manifest'
    value: boolean
  }

  export function encode (obj: Partial<FleetRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, FleetRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FleetRequest>): FleetRequest {
    return decodeMessage(buf, FleetRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FleetRequest>): Generator<FleetRequestKindFieldEvent | FleetRequestRegistryFieldEvent | FleetRequestRepositoryFieldEvent | FleetRequestReferenceFieldEvent | FleetRequestPullThroughFieldEvent | FleetRequestManifestFieldEvent> {
    return streamMessage(buf, FleetRequest.codec(), opts)
  }
}

export interface FleetResponse {
  status: FleetResponse.Status
  bundleId: Uint8Array<ArrayBuffer>
  digest: string
  mediaType: string
  manifest: Uint8Array<ArrayBuffer>
  reason: string
}

export namespace FleetResponse {
  export enum Status {
    FOUND = 'FOUND',
    NOT_FOUND = 'NOT_FOUND',
    UNAVAILABLE = 'UNAVAILABLE'
  }

  enum __StatusValues {
    FOUND = 0,
    NOT_FOUND = 1,
    UNAVAILABLE = 2
  }

  export namespace Status {
    export const codec = (): Codec<Status, Partial<Status>> => {
      return enumeration<Status>(__StatusValues)
    }
  }

  let _codec: Codec<FleetResponse, Partial<FleetResponse>>

  export const codec = (): Codec<FleetResponse, Partial<FleetResponse>> => {
    if (_codec == null) {
      _codec = message<FleetResponse, Partial<FleetResponse>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.status != null && __StatusValues[obj.status] !== 0) {
          w.uint32(8)
          FleetResponse.Status.codec().encode(obj.status, w)
        }

        if ((obj.bundleId != null && obj.bundleId.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.bundleId)
        }

        if ((obj.digest != null && obj.digest !== '')) {
          w.uint32(26)
          w.string(obj.digest)
        }

        if ((obj.mediaType != null && obj.mediaType !== '')) {
          w.uint32(34)
          w.string(obj.mediaType)
        }

        if ((obj.manifest != null && obj.manifest.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.manifest)
        }

        if ((obj.reason != null && obj.reason !== '')) {
          w.uint32(50)
          w.string(obj.reason)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          status: Status.FOUND,
          bundleId: uint8ArrayAlloc(0),
          digest: '',
          mediaType: '',
          manifest: uint8ArrayAlloc(0),
          reason: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.status = FleetResponse.Status.codec().decode(reader)
              break
            }
            case 2: {
              obj.bundleId = reader.bytes()
              break
            }
            case 3: {
              obj.digest = reader.string()
              break
            }
            case 4: {
              obj.mediaType = reader.string()
              break
            }
            case 5: {
              obj.manifest = reader.bytes()
              break
            }
            case 6: {
              obj.reason = reader.string()
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
                value: FleetResponse.Status.codec().decode(reader)
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
                field: `${prefix}.digest`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.mediaType`,
                value: reader.string()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.manifest`,
                value: reader.bytes()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.reason`,
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

  export interface FleetResponseStatusFieldEvent {
    field: '$.status'
    value: FleetResponse.Status
  }

  export interface FleetResponseBundleIdFieldEvent {
    field: '$.bundleId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface FleetResponseDigestFieldEvent {
    field: '$.digest'
    value: string
  }

  export interface FleetResponseMediaTypeFieldEvent {
    field: '$.mediaType'
    value: string
  }

  export interface FleetResponseManifestFieldEvent {
    field: '$.manifest'
    value: Uint8Array<ArrayBuffer>
  }

  export interface FleetResponseReasonFieldEvent {
    field: '$.reason'
    value: string
  }

  export function encode (obj: Partial<FleetResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, FleetResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FleetResponse>): FleetResponse {
    return decodeMessage(buf, FleetResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FleetResponse>): Generator<FleetResponseStatusFieldEvent | FleetResponseBundleIdFieldEvent | FleetResponseDigestFieldEvent | FleetResponseMediaTypeFieldEvent | FleetResponseManifestFieldEvent | FleetResponseReasonFieldEvent> {
    return streamMessage(buf, FleetResponse.codec(), opts)
  }
}
