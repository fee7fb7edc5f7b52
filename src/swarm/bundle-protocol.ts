import { decodeBundleManifest } from '../manifest/index.js'
import {
  BUNDLE_FETCH_TIMEOUT_MS, BUNDLE_PART_BYTES, BUNDLE_PROTOCOL, BUNDLE_REQUEST_TIMEOUT_MS, BUNDLE_SERVE_TIMEOUT_MS, FIRST_MESSAGE_TIMEOUT_MS, MAX_BUNDLE_PART_MESSAGE_BYTES,
  MAX_BUNDLE_REQUEST_BYTES, MAX_BUNDLE_RESPONSE_BYTES, MAX_ENCODED_BUNDLE_BYTES, MESSAGE_TIMEOUT_MS, STREAM_OPEN_TIMEOUT_MS,
} from './constants.js'
import { bytesToId, idToBytes } from './content-id.js'
import { BadDataError, MessageTimeoutError, ProtocolViolationError, SwarmError, isRemoteFault } from './errors.js'
import { FrameQueue, sendFrame } from './framing.js'
import { BundlePart, BundleRequest, BundleResponse } from './pb/swarm-bundle.pb.js'
import type { Semaphore } from './semaphore.js'
import type { Connection, Stream } from '@libp2p/interface'
import { abortAfter } from '../wait/index.js'

/**
 * /shoal/bundle/1.0.0: one request per stream. The asker sends a bundle ID; the holder
 * answers NOT_FOUND, or OK with the manifest's size followed by the manifest in parts. The
 * asker hashes what it received and drops it unless it is the ID it asked for.
 */

export interface BundleServerComponents {
  store: { getEncodedBundle: (id: string) => Promise<Uint8Array | undefined> }
  /** Manifests being served at once, all peers together: each is held in memory while it goes out. */
  slots?: Semaphore
  /** The asker broke the protocol: the swarm charges it. */
  onViolation?: (err: Error) => void
}

export async function serveBundleRequest (components: BundleServerComponents, stream: Stream): Promise<void> {
  // Attached before the first await: data that arrives with no listener would be buffered.
  // One request per stream: a second frame is a violation (no queue).
  const frames = new FrameQueue(stream, { maxFrameBytes: MAX_BUNDLE_REQUEST_BYTES, messageTimeoutMs: MESSAGE_TIMEOUT_MS, maxQueuedFrames: 0 })
  // An asker that reads the manifest slowly, or not at all, gives up its stream at this deadline.
  const signal = abortAfter(BUNDLE_SERVE_TIMEOUT_MS)
  let holding = false
  try {
    const request = BundleRequest.decode(await frames.next({ timeoutMs: FIRST_MESSAGE_TIMEOUT_MS }))
    await components.slots?.acquire({ signal })
    holding = true
    const id = bytesToId(request.bundleId)
    const encoded = await components.store.getEncodedBundle(id)
    if (encoded === undefined) {
      await sendFrame(stream, BundleResponse.encode({ status: BundleResponse.Status.NOT_FOUND, totalBytes: 0n }), { signal })
    } else {
      await sendFrame(stream, BundleResponse.encode({ status: BundleResponse.Status.OK, totalBytes: BigInt(encoded.byteLength) }), { signal })
      for (let offset = 0; offset < encoded.byteLength; offset += BUNDLE_PART_BYTES) {
        await sendFrame(stream, BundlePart.encode({ data: Uint8Array.from(encoded.subarray(offset, offset + BUNDLE_PART_BYTES)) }), { signal })
      }
    }
    await stream.close({ signal })
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err))
    // A request protobuf could not decode is the asker's fault too.
    const malformed = !(error instanceof SwarmError) && !signal.aborted && stream.status === 'open'
    // The reset goes out before the charge, which may hang up the whole connection.
    stream.abort(error)
    if (isRemoteFault(error)) components.onViolation?.(error)
    else if (malformed) components.onViolation?.(new ProtocolViolationError(`a malformed bundle request (${error.message})`))
  } finally {
    if (holding) components.slots?.release()
  }
}

/**
 * Asks one peer for a bundle manifest. Resolves with verified bytes, with `undefined` when
 * the peer does not hold it, and throws BadDataError when it sent bytes that are not that
 * bundle (the caller bans it) or another error when the exchange failed. `onHolding` is
 * called when the peer has said it holds the manifest (an OK of an acceptable size), before
 * the manifest's parts: a search may stop cutting the exchange off at its own deadline then.
 */
export async function fetchBundle (
  connection: Connection, bundleId: string, options: { signal?: AbortSignal, timeoutMs?: number, onHolding?: () => void } = {},
): Promise<Uint8Array | undefined> {
  const onHolding = options.onHolding
  const openSignal = abortAfter(STREAM_OPEN_TIMEOUT_MS, options.signal)
  const stream = await connection.newStream(BUNDLE_PROTOCOL, { signal: openSignal })
  // One deadline for the whole exchange: each message has its own, but a peer that sends
  // tiny parts just within them would otherwise hold the pull forever.
  const timeoutMs = options.timeoutMs ?? BUNDLE_FETCH_TIMEOUT_MS
  const deadline = abortAfter(timeoutMs)
  options = { signal: options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]) }
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
    onHolding?.()
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
    // The deadline is the peer's doing (it sent too slowly), not ours: say so in a typed error.
    if (deadline.aborted && options.signal?.aborted === true && !(err instanceof BadDataError)) throw new MessageTimeoutError('the whole manifest', timeoutMs)
    throw err
  }
}
