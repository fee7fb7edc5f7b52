import { ProtocolViolationError } from './errors.js'
import { FleetBlobFailedError, FleetBlobStalledError, fetchFleetBlob, fetchFleetBlobProgress, type FleetBlobQuery, type FleetBlobRelayAnswer, type FleetBlobStream } from './fleet-blob-protocol.js'
import type { FleetBlobProgress } from './fleet-blob-relays.js'
import { pullThroughOrder, type FleetPeer } from './fleet-protocol.js'
import type { RateLimiter } from './rate-limiter.js'
import type { ChunkStream } from './chunk-stream.js'
import type { Connection } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * A relay that sends nothing new for this long is dropped and the blob resumed from the
 * pull-through node. Shorter than FLEET_BLOB_STALL_MS (90 s, the wait on the pull-through node
 * itself): a relay is an ordinary edge, often loaded, and the pull-through node is the one that
 * surely has the bytes. Not much shorter: a relay is silent too while its own source is (a
 * registry pausing), and resuming then costs the gateway one more copy for nothing.
 */
export const FLEET_BLOB_RELAY_STALL_MS = 30 * 1000
/**
 * A relay is judged by its rate over each span of this much time we spend waiting on it: one
 * that dripped a few bytes just under the silence rule held its askers for good. Bytes that
 * were queued while our own consumer was busy count for the relay, time we were not waiting
 * does not count against it: only a relay that keeps us waiting is judged.
 */
export const FLEET_BLOB_RELAY_JUDGE_MS = 10 * 1000
/**
 * A relay that sends less than this per second of our waiting is dropped, and the blob
 * resumed from the pull-through node at the byte reached. An edge relaying from the gateway
 * over the slowest link the fleet bed models (20 Mbit/s) sends ~10 times this; a relay is as
 * slow as its own source only while the registry itself is, and then dropping it costs the
 * gateway one copy, never a byte of the blob.
 */
export const FLEET_BLOB_RELAY_MIN_BYTES_PER_SECOND = 256 * 1024
/**
 * A relay dropped as too slow or silent is charged only when the pull-through node, asked for
 * the rest, held more than this beyond the bytes the relay sent: a relay whose own source
 * paused (the gateway waiting on its registry) had nothing more to send, and was charged once
 * per asker and blob for it. One DATA frame (a relay writes each frame before it serves it,
 * so one current with its source trails it by the frame on its way), which also covers the
 * registry write (UPSTREAM_WRITE_BATCH_BYTES) that may land between the judgement and the ask.
 */
export const FLEET_BLOB_RELAY_LAG_BYTES = 1024 * 1024
/**
 * A relay that passed the floor is still left for the pull-through node when that node's direct
 * streams typically run (its reference rate, fleet-blob-relays.ts `referenceRate`: the lower
 * median, one rate per peer) more than this many times the relay's rate to us, and it holds
 * more than FLEET_BLOB_RELAY_LAG_BYTES beyond what the relay sent: the floor is absolute, and a
 * relay sending just above it (a compromised member, or an honest one on a slow link or a loaded
 * machine) held its asker for size / 256 KiB/s — over half an hour for a 512 MiB layer the
 * gateway could send in seconds. Not charged: an honest relay on a slow uplink looks the same.
 * Four, not two: on the fleet bed's even links a relay sends each of its two askers half its
 * uplink as the gateway sends each of its two direct receivers half its own, so an honest tree
 * runs near 1; a relay on a machine twice as loaded as the gateway is kept.
 */
export const FLEET_BLOB_RELAY_BEHIND_RATIO = 4

export interface FleetBlobAskerHooks {
  /**
   * A connection to the relay the pull-through node named, dialled at `addrs` when there is
   * none; undefined when it cannot be had (banned here, unreachable, not a peer ID).
   */
  connectRelay: (peer: string, addrs: string[], signal: AbortSignal) => Promise<Connection | undefined>
  /** A relay broke the protocol, the blob it sent failed its digest, or it was too slow or silent to wait for. */
  penalize: (peer: string, kind: 'violation' | 'bad-data' | 'slow', detail: string) => void
  /** Why a relay was not used, or dropped mid-blob (the daemon's log at info). */
  relayDropped: (detail: { relay: string, peer: string, received: number, reason: string }) => void
  /** Blob bytes received from `peer` (transfer stats). */
  received: (peer: string, bytes: number) => void
  /** A data lane to the pull-through node `peer` for one blob stream (lanes.ts blobLane); without it, or when it gives none, libp2p. */
  lane?: (peer: string, signal: AbortSignal) => Promise<ChunkStream | undefined>
}

export interface FleetBlobSource {
  stream?: FleetBlobStream
  /** The pull-through node that answered. */
  peer?: string
  /** The edge it pointed us at, whose stream this is (until it breaks off). */
  relay?: string
  misses: Array<{ peer: string, reason: string }>
}

/**
 * Asks the trusted peers for a blob stream one at a time, gateways first and then by peer ID
 * (FleetAsker's order), so every edge asks the same node and its single flight fetches the
 * blob from the registry once for the fleet. The first that streams wins. When it answers
 * RELAY the blob comes from that edge instead, which is receiving it already; a relay that
 * refuses, cannot be reached, breaks off or stalls is dropped and the pull-through node streams
 * the rest itself from where the relay stopped (`direct`, so it does not point us at a relay
 * again). Bytes from a relay are as unverified as any: the caller checks the sha256 and calls
 * `rejected` when it fails, which charges the relay.
 */
export async function streamFromFleet (peers: FleetPeer[], query: FleetBlobQuery, hooks: FleetBlobAskerHooks, options: { signal: AbortSignal }): Promise<FleetBlobSource> {
  const misses: Array<{ peer: string, reason: string }> = []
  if (peers.length === 0) return { misses: [{ peer: '-', reason: 'no trusted peer is connected' }] }
  const counted = (peer: string) => (bytes: number): void => { hooks.received(peer, bytes) }
  for (const { peer, connection } of pullThroughOrder(peers)) {
    const lane = laneTo(peer, hooks)
    try {
      const answer = await fetchFleetBlob(connection, query, { ...options, onData: counted(peer), lane })
      if ('data' in answer) return { stream: answer, peer, misses }
      if (answer.status !== 'relay') {
        misses.push({ peer, reason: `${answer.status}: ${answer.reason}` })
        continue
      }
      const relayed = await fromRelay(answer, query, hooks, options.signal)
      if (relayed !== undefined) return { stream: resumable(relayed.stream, answer.peer, connection, peer, query, hooks, options.signal), peer, relay: answer.peer, misses }
      const direct = await fetchFleetBlob(connection, query, { ...options, ask: { offset: 0, direct: true }, onData: counted(peer), lane })
      if ('data' in direct) return { stream: direct, peer, misses }
      misses.push({ peer, reason: `${direct.status}: ${direct.status === 'relay' ? 'a RELAY to a direct request' : direct.reason}` })
    } catch (err) {
      options.signal.throwIfAborted()
      misses.push({ peer, reason: err instanceof Error ? err.message : String(err) })
    }
  }
  return { misses }
}

/**
 * The lane opener for streams from the pull-through node `peer`. Relays are asked on libp2p: an
 * edge's lanes are a few per peer, and a relay's judging (its floor, its pace against the
 * node's) is measured there.
 */
function laneTo (peer: string, hooks: FleetBlobAskerHooks): ((signal: AbortSignal) => Promise<ChunkStream | undefined>) | undefined {
  const lane = hooks.lane
  return lane === undefined ? undefined : async (signal) => await lane(peer, signal)
}

/** The relay's stream, or undefined (reported to `relayDropped`) when it does not give one whose size is the pull-through node's. */
async function fromRelay (relay: FleetBlobRelayAnswer, query: FleetBlobQuery, hooks: FleetBlobAskerHooks, signal: AbortSignal): Promise<{ stream: FleetBlobStream } | undefined> {
  let answered = false
  try {
    const stream = await answerOf(relay, query, hooks, signal)
    answered = stream !== undefined
    return stream
  } finally {
    // The pull-through node names us a relay only once we can answer (we have our relay's HEADER).
    relay.report(answered)
  }
}

async function answerOf (relay: FleetBlobRelayAnswer, query: FleetBlobQuery, hooks: FleetBlobAskerHooks, signal: AbortSignal): Promise<{ stream: FleetBlobStream } | undefined> {
  const drop = (reason: string): undefined => { hooks.relayDropped({ relay: relay.peer, peer: '-', received: 0, reason }); return undefined }
  const connection = await hooks.connectRelay(relay.peer, relay.addrs, signal)
  if (connection === undefined) return drop('could not connect to it')
  try {
    // Direct: a relay serves what it has, it never points further. It answers from a fetch of
    // its own already under way, never fetching first: one that says nothing for the judging
    // window is dropped as one that sends nothing is (it held its asker for the pull-through
    // node's 10 minutes before).
    const answer = await fetchFleetBlob(connection, query, { signal, ask: { offset: 0, direct: true }, stallMs: FLEET_BLOB_RELAY_STALL_MS, answerMs: FLEET_BLOB_RELAY_JUDGE_MS, onData: (bytes) => { hooks.received(relay.peer, bytes) } })
    if (!('data' in answer)) return drop(answer.status === 'relay' ? 'it answered RELAY' : `${answer.status}: ${answer.reason}`)
    if (answer.size !== relay.size) {
      answer.close()
      hooks.penalize(relay.peer, 'violation', `a relayed blob announced as ${String(answer.size)} bytes; the pull-through node said ${String(relay.size)}`)
      return drop('its size differs from the pull-through node\'s')
    }
    return { stream: answer }
  } catch (err) {
    signal.throwIfAborted()
    if (err instanceof ProtocolViolationError) hooks.penalize(relay.peer, 'violation', err.message)
    // Silent past the judging window although it could answer at once (the pull-through node
    // said so: it had sent it the blob's HEADER, or it reported its own relay's, and a node
    // names no other): it cost its asker the window as a dripping relay does. An older node
    // named relays two hops down that may have been waiting on their own relay's HEADER.
    if (err instanceof FleetBlobStalledError && relay.answering) hooks.penalize(relay.peer, 'slow', `fleet blob relay: no answer: ${err.message}`)
    return drop(err instanceof Error ? err.message : String(err))
  }
}

/**
 * The stream's bytes, each piece paid for from the node's download cap (--max-download) before
 * it is handed on: a consumer held back here acknowledges later, so the sender's window
 * (FLEET_BLOB_WINDOW_BYTES) holds it back in turn. The wait is the consumer's time, which a
 * relay is not judged by (`judged`).
 */
export function pacedByDownloadCap (stream: FleetBlobStream, limiter: RateLimiter, signal: AbortSignal): FleetBlobStream {
  async function * data (): AsyncGenerator<Uint8ArrayList> {
    for await (const piece of stream.data) {
      await limiter.take(piece.byteLength, { signal })
      yield piece
    }
  }
  return {
    size: stream.size,
    data: data(),
    close: () => { stream.close() },
    get relay () { return stream.relay },
    rejected: stream.rejected,
  }
}

/**
 * The relay's bytes, then — if it breaks off, stalls or fails — the rest from the pull-through
 * node, from the first byte the relay did not send (the asker's sha256 runs over both).
 */
function resumable (relayed: FleetBlobStream, relay: string, connection: Connection, peer: string, query: FleetBlobQuery, hooks: FleetBlobAskerHooks, signal: AbortSignal): FleetBlobStream {
  let current = relayed
  let relayBytes = 0
  /** Asks the pull-through node how far it is (a window the relay passed): a reason to leave the relay, or undefined. */
  const behind = async (bytesPerSecond: number): Promise<string | undefined> => {
    let source: FleetBlobProgress | undefined
    try {
      source = await fetchFleetBlobProgress(connection, query, relayBytes, { signal })
    } catch {
      signal.throwIfAborted()
      // No figures this window: the relay is judged by the floor alone until the next.
    }
    return relayBehind({ bytes: relayBytes, bytesPerSecond }, source)
  }
  async function * data (): AsyncGenerator<Uint8ArrayList> {
    let reason: string
    let slow = false
    try {
      for await (const piece of judged(relayed, FLEET_BLOB_RELAY_JUDGE_MS, FLEET_BLOB_RELAY_MIN_BYTES_PER_SECOND, behind)) {
        relayBytes += piece.byteLength
        yield piece
      }
      return
    } catch (err) {
      signal.throwIfAborted()
      if (err instanceof ProtocolViolationError) hooks.penalize(relay, 'violation', err.message)
      reason = err instanceof Error ? err.message : String(err)
      slow = err instanceof RelayTooSlowError || err instanceof FleetBlobStalledError
    }
    let rest: Awaited<ReturnType<typeof fetchFleetBlob>> | undefined
    try {
      rest = await fetchFleetBlob(connection, query, { signal, ask: { offset: relayBytes, direct: true }, onData: (bytes) => { hooks.received(peer, bytes) }, lane: laneTo(peer, hooks) })
    } finally {
      if (slow) reason = judgeSlowRelay(relay, relayBytes, rest !== undefined && 'data' in rest ? { held: rest.held, relayHeld: rest.relayHeld, size: rest.size } : undefined, reason, hooks)
      hooks.relayDropped({ relay, peer, received: relayBytes, reason })
    }
    if (!('data' in rest)) throw new FleetBlobFailedError(`the relay ${relay} broke off after ${relayBytes} bytes and the pull-through node ${peer} did not resume: ${rest.status === 'relay' ? 'RELAY' : rest.reason}`)
    if (rest.size !== relayed.size) {
      rest.close()
      throw new FleetBlobFailedError(`the pull-through node ${peer} resumed a ${String(rest.size)}-byte blob; the relay sent ${String(relayed.size)}`)
    }
    current = rest
    yield * rest.data
  }
  return {
    size: relayed.size,
    data: data(),
    close: () => { current.close() },
    get relay () { return relayBytes > 0 ? relay : undefined },
    rejected: (detail) => { if (relayBytes > 0) hooks.penalize(relay, 'bad-data', detail) },
  }
}

/**
 * A relay too slow or silent to wait for cost its asker the judging window (or the silence
 * rule's 30 s): charged as a holder that kept a request far past its time is (a stranger that
 * asked early to be named a relay, and then dripped, was never charged), unless what the relay
 * could have sent (`source`) was no more than FLEET_BLOB_RELAY_LAG_BYTES beyond what it sent
 * and not the whole blob: then the relay was waiting on its own source, not stalling us. What it
 * could have sent is the pull-through node's word (relay_held): its own `held` for a relay it has
 * streamed to since before we were pointed there; what the relay acknowledged from it for one that
 * came to it only later (it left its own relay, whose lag it was); 0 for one that still receives
 * from a relay (that relay's lag, which it judges itself). An older node says only its `held`.
 * A source whole there is whole at an honest relay a moment later: one that held back its end is
 * charged. A source that did not say (no answer) leaves the charge as it was. The reason to log.
 */
function judgeSlowRelay (relay: string, relayBytes: number, source: { held: number | undefined, relayHeld: number | undefined, size: number | undefined } | undefined, reason: string, hooks: FleetBlobAskerHooks): string {
  const sourceHeld = source?.relayHeld ?? source?.held
  const whole = sourceHeld !== undefined && sourceHeld === source?.size && relayBytes < sourceHeld
  const what = source?.relayHeld === undefined || source.relayHeld === source.held
    ? `the pull-through node held ${String(sourceHeld)} bytes`
    : `the relay had ${source.relayHeld} bytes from the pull-through node (which held ${String(source.held)})`
  if (sourceHeld !== undefined && !whole && sourceHeld - relayBytes <= FLEET_BLOB_RELAY_LAG_BYTES) {
    return `${reason}; not charged: ${what}, its source had no more for it`
  }
  const held = sourceHeld === undefined ? '' : ` (${what}, ${relayBytes} were sent)`
  hooks.penalize(relay, 'slow', `fleet blob relay: ${reason}${held}`)
  return reason
}

/** A relay passed the floor but was far slower than the pull-through node, which held more (relayBehind). */
class RelayBehindError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'RelayBehindError'
  }
}

/**
 * Why to leave a relay that passed the floor over a judging window at `relay.bytesPerSecond`,
 * having sent `relay.bytes`, for the pull-through node whose figures are `source`; undefined to
 * stay. Left when that node holds more than a frame beyond what the relay sent and its direct
 * streams typically run more than FLEET_BLOB_RELAY_BEHIND_RATIO times the relay's rate. A node
 * that gave no figures (an older one, or none kept) leaves the relay to the floor alone.
 */
export function relayBehind (relay: { bytes: number, bytesPerSecond: number }, source: FleetBlobProgress | undefined): string | undefined {
  const held = source?.held
  const rate = source?.bytesPerSecond
  if (held === undefined || rate === undefined) return undefined
  if (held - relay.bytes <= FLEET_BLOB_RELAY_LAG_BYTES) return undefined
  if (relay.bytesPerSecond * FLEET_BLOB_RELAY_BEHIND_RATIO >= rate) return undefined
  return `behind its source: ${Math.round(relay.bytesPerSecond)} B/s while the pull-through node's direct streams typically ran at ${rate} B/s and held ${held} bytes, ${relay.bytes} sent by the relay; not charged`
}

/** A relay sent less than FLEET_BLOB_RELAY_MIN_BYTES_PER_SECOND over a span of our waiting on it. */
class RelayTooSlowError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'RelayTooSlowError'
  }
}

/**
 * The relay's bytes, failing (and letting its stream go) when over a span of `judgeMs` spent
 * waiting on it, it sent less than `minBytesPerSecond` of that span (FLEET_BLOB_RELAY_JUDGE_MS),
 * or when `behind`, asked at the end of each span it passed, gives a reason to leave it.
 */
async function * judged (relayed: FleetBlobStream, judgeMs: number, minBytesPerSecond: number, behind?: (bytesPerSecond: number) => Promise<string | undefined>): AsyncGenerator<Uint8ArrayList> {
  const pieces = relayed.data[Symbol.asyncIterator]()
  let pending: Promise<IteratorResult<Uint8ArrayList>> | undefined
  let waitedMs = 0
  let bytes = 0
  let done = false
  try {
    for (;;) {
      pending ??= pieces.next()
      const started = performance.now()
      let timer: NodeJS.Timeout | undefined
      const judgeNow = new Promise<undefined>((resolve) => { timer = setTimeout(() => { resolve(undefined) }, Math.max(0, judgeMs - waitedMs)) })
      const result = await Promise.race([pending, judgeNow]).finally(() => { clearTimeout(timer) })
      waitedMs += performance.now() - started
      if (result !== undefined) {
        pending = undefined
        if (result.done === true) {
          done = true
          return
        }
        bytes += result.value.byteLength
        yield result.value
      }
      if (waitedMs < judgeMs) continue
      const rate = bytes / (waitedMs / 1000)
      if (rate < minBytesPerSecond) throw new RelayTooSlowError(`too slow: ${bytes} bytes in ${Math.round(waitedMs)} ms of waiting on it (${Math.round(rate)} B/s, at least ${minBytesPerSecond} wanted)`)
      // Not measured while the source is asked: the relay's bytes queue meanwhile, for it.
      const leave = await behind?.(rate)
      if (leave !== undefined) throw new RelayBehindError(leave)
      waitedMs = 0
      bytes = 0
    }
  } finally {
    // Left before its END (judged, or the reader stopped): its stream goes, whether or not a read
    // of it is waiting (judged just after a piece came, none is, and the stream was left open).
    pending?.catch(() => undefined)
    if (!done) relayed.close()
  }
}
