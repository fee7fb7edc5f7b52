import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface HaveMessage {
  hello?: Hello
  interest?: Interest
  objects: ObjectHave[]
  updates: ChunkUpdate[]
}

export namespace HaveMessage {
  let _codec: Codec<HaveMessage, Partial<HaveMessage>>

  export const codec = (): Codec<HaveMessage, Partial<HaveMessage>> => {
    if (_codec == null) {
      _codec = message<HaveMessage, Partial<HaveMessage>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.hello != null) {
          w.uint32(10)
          Hello.codec().encode(obj.hello, w)
        }

        if (obj.interest != null) {
          w.uint32(18)
          Interest.codec().encode(obj.interest, w)
        }

        if (obj.objects != null && obj.objects.length > 0) {
          for (const value of obj.objects) {
            w.uint32(26)
            ObjectHave.codec().encode(value, w)
          }
        }

        if (obj.updates != null && obj.updates.length > 0) {
          for (const value of obj.updates) {
            w.uint32(34)
            ChunkUpdate.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          objects: [],
          updates: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.hello = Hello.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.hello
              })
              break
            }
            case 2: {
              obj.interest = Interest.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.interest
              })
              break
            }
            case 3: {
              if (opts.limits?.objects != null && obj.objects.length === opts.limits.objects) {
                throw new MaxLengthError('Decode error - repeated field "objects" had too many elements')
              }

              obj.objects.push(ObjectHave.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.objects$
              }))
              break
            }
            case 4: {
              if (opts.limits?.updates != null && obj.updates.length === opts.limits.updates) {
                throw new MaxLengthError('Decode error - repeated field "updates" had too many elements')
              }

              obj.updates.push(ChunkUpdate.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.updates$
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
          objects: 0,
          updates: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield * Hello.codec().stream(reader, reader.uint32(), `${prefix}.hello`, {
                limits: opts.limits?.hello
              })

              break
            }
            case 2: {
              yield * Interest.codec().stream(reader, reader.uint32(), `${prefix}.interest`, {
                limits: opts.limits?.interest
              })

              break
            }
            case 3: {
              if (opts.limits?.objects != null && obj.objects === opts.limits.objects) {
                throw new MaxLengthError('Streaming decode error - repeated field "objects" had too many elements')
              }

              for (const evt of ObjectHave.codec().stream(reader, reader.uint32(), `${prefix}.objects[]`, {
                limits: opts.limits?.objects$
              })) {
                yield {
                  ...evt,
                  index: obj.objects
                }
              }

              obj.objects++

              break
            }
            case 4: {
              if (opts.limits?.updates != null && obj.updates === opts.limits.updates) {
                throw new MaxLengthError('Streaming decode error - repeated field "updates" had too many elements')
              }

              for (const evt of ChunkUpdate.codec().stream(reader, reader.uint32(), `${prefix}.updates[]`, {
                limits: opts.limits?.updates$
              })) {
                yield {
                  ...evt,
                  index: obj.updates
                }
              }

              obj.updates++

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

  export interface HaveMessageHelloGatewayFieldEvent {
    field: '$.hello.gateway'
    value: boolean
  }

  export interface HaveMessageHelloBundlesFieldEvent {
    field: '$.hello.bundles[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface HaveMessageInterestAddedFieldEvent {
    field: '$.interest.added[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface HaveMessageInterestRemovedFieldEvent {
    field: '$.interest.removed[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface HaveMessageObjectsObjectFieldEvent {
    field: '$.objects[].object'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface HaveMessageObjectsWholeFieldEvent {
    field: '$.objects[].whole'
    value: boolean
    index: number
  }

  export interface HaveMessageObjectsBitmapFieldEvent {
    field: '$.objects[].bitmap'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface HaveMessageUpdatesObjectFieldEvent {
    field: '$.updates[].object'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface HaveMessageUpdatesIndexesFieldEvent {
    field: '$.updates[].indexes[]'
    index: number
    value: number
  }

  export function encode (obj: Partial<HaveMessage>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, HaveMessage.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HaveMessage>): HaveMessage {
    return decodeMessage(buf, HaveMessage.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HaveMessage>): Generator<HaveMessageHelloGatewayFieldEvent | HaveMessageHelloBundlesFieldEvent | HaveMessageInterestAddedFieldEvent | HaveMessageInterestRemovedFieldEvent | HaveMessageObjectsObjectFieldEvent | HaveMessageObjectsWholeFieldEvent | HaveMessageObjectsBitmapFieldEvent | HaveMessageUpdatesObjectFieldEvent | HaveMessageUpdatesIndexesFieldEvent> {
    return streamMessage(buf, HaveMessage.codec(), opts)
  }
}

export interface Hello {
  gateway: boolean
  bundles: Uint8Array<ArrayBuffer>[]
}

export namespace Hello {
  let _codec: Codec<Hello, Partial<Hello>>

  export const codec = (): Codec<Hello, Partial<Hello>> => {
    if (_codec == null) {
      _codec = message<Hello, Partial<Hello>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.gateway != null && obj.gateway !== false)) {
          w.uint32(8)
          w.bool(obj.gateway)
        }

        if (obj.bundles != null && obj.bundles.length > 0) {
          for (const value of obj.bundles) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          gateway: false,
          bundles: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.gateway = reader.bool()
              break
            }
            case 2: {
              if (opts.limits?.bundles != null && obj.bundles.length === opts.limits.bundles) {
                throw new MaxLengthError('Decode error - repeated field "bundles" had too many elements')
              }

              obj.bundles.push(reader.bytes())
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
          bundles: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.gateway`,
                value: reader.bool()
              }
              break
            }
            case 2: {
              if (opts.limits?.bundles != null && obj.bundles === opts.limits.bundles) {
                throw new MaxLengthError('Streaming decode error - repeated field "bundles" had too many elements')
              }

              yield {
                field: `${prefix}.bundles[]`,
                index: obj.bundles,
                value: reader.bytes()
              }

              obj.bundles++

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

  export interface HelloGatewayFieldEvent {
    field: '$.gateway'
    value: boolean
  }

  export interface HelloBundlesFieldEvent {
    field: '$.bundles[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Hello>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Hello.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Hello>): Hello {
    return decodeMessage(buf, Hello.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Hello>): Generator<HelloGatewayFieldEvent | HelloBundlesFieldEvent> {
    return streamMessage(buf, Hello.codec(), opts)
  }
}

export interface Interest {
  added: Uint8Array<ArrayBuffer>[]
  removed: Uint8Array<ArrayBuffer>[]
}

export namespace Interest {
  let _codec: Codec<Interest, Partial<Interest>>

  export const codec = (): Codec<Interest, Partial<Interest>> => {
    if (_codec == null) {
      _codec = message<Interest, Partial<Interest>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.added != null && obj.added.length > 0) {
          for (const value of obj.added) {
            w.uint32(10)
            w.bytes(value)
          }
        }

        if (obj.removed != null && obj.removed.length > 0) {
          for (const value of obj.removed) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          added: [],
          removed: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.added != null && obj.added.length === opts.limits.added) {
                throw new MaxLengthError('Decode error - repeated field "added" had too many elements')
              }

              obj.added.push(reader.bytes())
              break
            }
            case 2: {
              if (opts.limits?.removed != null && obj.removed.length === opts.limits.removed) {
                throw new MaxLengthError('Decode error - repeated field "removed" had too many elements')
              }

              obj.removed.push(reader.bytes())
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
          added: 0,
          removed: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.added != null && obj.added === opts.limits.added) {
                throw new MaxLengthError('Streaming decode error - repeated field "added" had too many elements')
              }

              yield {
                field: `${prefix}.added[]`,
                index: obj.added,
                value: reader.bytes()
              }

              obj.added++

              break
            }
            case 2: {
              if (opts.limits?.removed != null && obj.removed === opts.limits.removed) {
                throw new MaxLengthError('Streaming decode error - repeated field "removed" had too many elements')
              }

              yield {
                field: `${prefix}.removed[]`,
                index: obj.removed,
                value: reader.bytes()
              }

              obj.removed++

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

  export interface InterestAddedFieldEvent {
    field: '$.added[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface InterestRemovedFieldEvent {
    field: '$.removed[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Interest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Interest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Interest>): Interest {
    return decodeMessage(buf, Interest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Interest>): Generator<InterestAddedFieldEvent | InterestRemovedFieldEvent> {
    return streamMessage(buf, Interest.codec(), opts)
  }
}

export interface ObjectHave {
  object: Uint8Array<ArrayBuffer>
  whole: boolean
  bitmap: Uint8Array<ArrayBuffer>
}

export namespace ObjectHave {
  let _codec: Codec<ObjectHave, Partial<ObjectHave>>

  export const codec = (): Codec<ObjectHave, Partial<ObjectHave>> => {
    if (_codec == null) {
      _codec = message<ObjectHave, Partial<ObjectHave>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.object != null && obj.object.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.object)
        }

        if ((obj.whole != null && obj.whole !== false)) {
          w.uint32(16)
          w.bool(obj.whole)
        }

        if ((obj.bitmap != null && obj.bitmap.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.bitmap)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          object: uint8ArrayAlloc(0),
          whole: false,
          bitmap: uint8ArrayAlloc(0)
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
              obj.whole = reader.bool()
              break
            }
            case 3: {
              obj.bitmap = reader.bytes()
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
                field: `${prefix}.whole`,
                value: reader.bool()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.bitmap`,
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

  export interface ObjectHaveObjectFieldEvent {
    field: '$.object'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ObjectHaveWholeFieldEvent {
    field: '$.whole'
    value: boolean
  }

  export interface ObjectHaveBitmapFieldEvent {
    field: '$.bitmap'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<ObjectHave>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ObjectHave.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ObjectHave>): ObjectHave {
    return decodeMessage(buf, ObjectHave.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ObjectHave>): Generator<ObjectHaveObjectFieldEvent | ObjectHaveWholeFieldEvent | ObjectHaveBitmapFieldEvent> {
    return streamMessage(buf, ObjectHave.codec(), opts)
  }
}

export interface ChunkUpdate {
  object: Uint8Array<ArrayBuffer>
  indexes: number[]
}

export namespace ChunkUpdate {
  let _codec: Codec<ChunkUpdate, Partial<ChunkUpdate>>

  export const codec = (): Codec<ChunkUpdate, Partial<ChunkUpdate>> => {
    if (_codec == null) {
      _codec = message<ChunkUpdate, Partial<ChunkUpdate>>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.object != null && obj.object.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.object)
        }

        if (obj.indexes != null && obj.indexes.length > 0) {
          for (const value of obj.indexes) {
            w.uint32(16)
            w.uint32(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          object: uint8ArrayAlloc(0),
          indexes: []
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
              if (opts.limits?.indexes != null && obj.indexes.length === opts.limits.indexes) {
                throw new MaxLengthError('Decode error - repeated field "indexes" had too many elements')
              }

              obj.indexes.push(reader.uint32())
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
          indexes: 0
        }

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
              if (opts.limits?.indexes != null && obj.indexes === opts.limits.indexes) {
                throw new MaxLengthError('Streaming decode error - repeated field "indexes" had too many elements')
              }

              yield {
                field: `${prefix}.indexes[]`,
                index: obj.indexes,
                value: reader.uint32()
              }

              obj.indexes++

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

  export interface ChunkUpdateObjectFieldEvent {
    field: '$.object'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ChunkUpdateIndexesFieldEvent {
    field: '$.indexes[]'
    index: number
    value: number
  }

  export function encode (obj: Partial<ChunkUpdate>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ChunkUpdate.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ChunkUpdate>): ChunkUpdate {
    return decodeMessage(buf, ChunkUpdate.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ChunkUpdate>): Generator<ChunkUpdateObjectFieldEvent | ChunkUpdateIndexesFieldEvent> {
    return streamMessage(buf, ChunkUpdate.codec(), opts)
  }
}
