import { decodeBundleManifest } from '../manifest/index.js'
import {
  BUNDLE_PART_BYTES, BUNDLE_PROTOCOL, BUNDLE_REQUEST_TIMEOUT_MS, FIRST_MESSAGE_TIMEOUT_MS, MAX_BUNDLE_PART_MESSAGE_BYTES,
  MAX_BUNDLE_REQUEST_BYTES, MAX_BUNDLE_RESPONSE_BYTES, MAX_ENCODED_BUNDLE_BYTES, MESSAGE_TIMEOUT_MS, STREAM_OPEN_TIMEOUT_MS,
} from './constants.js'
import { bytesToId, idToBytes } from './content-id.js'
import { BadDataError, ProtocolViolationError } from './errors.js'
import { FrameQueue, sendFrame } from './framing.js'
import { BundlePart, BundleRequest, BundleResponse } from './pb/swarm-bundle.pb.js'
import type { Connection, Stream } from '@libp2p/interface'

/**
 * /shoal/bundle/1.0.0: one request per stream. The asker sends a bundle ID; the holder
 * answers NOT_FOUND, or OK with the manifest's size followed by the manifest in parts. The
 * asker hashes what it received and drops it unless it is the ID it asked for.
 */

export interface BundleServerComponents {
  store: { getEncodedBundle: (id: string) => Promise<Uint8Array | undefined> }
}

export async function serveBundleRequest (components: BundleServerComponents, stream: Stream): Promise<void> {
  // Attached before the first await: data that arrives with no listener would be buffered.
  // One request per stream: a second frame is a violation (no queue).
  const frames = new FrameQueue(stream, { maxFrameBytes: MAX_BUNDLE_REQUEST_BYTES, messageTimeoutMs: MESSAGE_TIMEOUT_MS, maxQueuedFrames: 0 })
  try {
    const request = BundleRequest.decode(await frames.next({ timeoutMs: FIRST_MESSAGE_TIMEOUT_MS }))
    const id = bytesToId(request.bundleId)
    const encoded = await components.store.getEncodedBundle(id)
    if (encoded === undefined) {
      await sendFrame(stream, BundleResponse.encode({ status: BundleResponse.Status.NOT_FOUND, totalBytes: 0n }))
    } else {
      await sendFrame(stream, BundleResponse.encode({ status: BundleResponse.Status.OK, totalBytes: BigInt(encoded.byteLength) }))
      for (let offset = 0; offset < encoded.byteLength; offset += BUNDLE_PART_BYTES) {
        await sendFrame(stream, BundlePart.encode({ data: Uint8Array.from(encoded.subarray(offset, offset + BUNDLE_PART_BYTES)) }))
      }
    }
    await stream.close()
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  }
}

/**
 * Asks one peer for a bundle manifest. Resolves with verified bytes, with `undefined` when
 * the peer does not hold it, and throws BadDataError when it sent bytes that are not that
 * bundle (the caller bans it) or another error when the exchange failed.
 */
export async function fetchBundle (connection: Connection, bundleId: string, options: { signal?: AbortSignal } = {}): Promise<Uint8Array | undefined> {
  const signal = options.signal === undefined ? AbortSignal.timeout(STREAM_OPEN_TIMEOUT_MS) : AbortSignal.any([options.signal, AbortSignal.timeout(STREAM_OPEN_TIMEOUT_MS)])
  const stream = await connection.newStream(BUNDLE_PROTOCOL, { signal })
  const frames = new FrameQueue(stream, { maxFrameBytes: MAX_BUNDLE_PART_MESSAGE_BYTES, messageTimeoutMs: MESSAGE_TIMEOUT_MS, maxQueuedFrames: 4 })
  try {
    await sendFrame(stream, BundleRequest.encode({ bundleId: idToBytes(bundleId) }), options)
    const headerFrame = await frames.next({ timeoutMs: BUNDLE_REQUEST_TIMEOUT_MS, signal: options.signal })
    if (headerFrame.byteLength > MAX_BUNDLE_RESPONSE_BYTES) throw new ProtocolViolationError('a bundle response header is too large')
    const header = BundleResponse.decode(headerFrame)
    if (header.status === BundleResponse.Status.NOT_FOUND) {
      await stream.close(options)
      return undefined
    }
    if (header.status !== BundleResponse.Status.OK) throw new ProtocolViolationError(`bundle response status ${String(header.status)}`)
    if (header.totalBytes <= 0n || header.totalBytes > BigInt(MAX_ENCODED_BUNDLE_BYTES)) {
      throw new ProtocolViolationError(`a bundle manifest of ${header.totalBytes} bytes (the limit is ${MAX_ENCODED_BUNDLE_BYTES})`)
    }
    const total = Number(header.totalBytes)
    const encoded = new Uint8Array(total)
    for (let received = 0; received < total;) {
      const part = BundlePart.decode(await frames.next({ timeoutMs: MESSAGE_TIMEOUT_MS, signal: options.signal }))
      if (part.data.byteLength === 0 || part.data.byteLength > total - received) throw new ProtocolViolationError('a bundle part does not fit the announced size')
      encoded.set(part.data, received)
      received += part.data.byteLength
    }
    await stream.close(options)
    try {
      decodeBundleManifest(encoded, { expectedId: bundleId })
    } catch (err) {
      throw new BadDataError(`the manifest sent for bundle ${bundleId} is not that bundle`, { cause: err })
    }
    return encoded
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}
