import { sha256Hex } from '../hash/index.js'
import { FIRST_MESSAGE_TIMEOUT_MS, MESSAGE_TIMEOUT_MS, STREAM_OPEN_TIMEOUT_MS } from './constants.js'
import { bytesToId, idToBytes } from './content-id.js'
import { BadDataError, ProtocolViolationError } from './errors.js'
import { FrameQueue, sendFrame } from './framing.js'
import { FleetRequest, FleetResponse } from './pb/swarm-fleet.pb.js'
import type { Connection, Stream } from '@libp2p/interface'
import { abortAfter } from '../wait/index.js'

/**
 * /shoal/fleet/1.0.0: one request and one answer per stream. An edge asks the peers it
 * trusts (the keys that may move its tags) for an OCI piece by registry name: which of their
 * bundles holds a sha256 digest, or what a tag names; a peer with an upstream registry for
 * that name may fetch it from there first (the fleet's pull-through), so the registry is
 * asked once for the whole fleet. What comes back is checked here: a bundle ID is 32 bytes
 * (the swarm then verifies every chunk against that bundle's manifest), a manifest must hash
 * to the digest given for it.
 */
export const FLEET_PROTOCOL = '/shoal/fleet/1.0.0'
/** Names and a reference: a few hundred bytes in practice. */
export const MAX_FLEET_REQUEST_BYTES = 4 * 1024
/** A manifest travels inside the answer: distribution-spec's 4 MiB limit plus the other fields. */
export const MAX_FLEET_RESPONSE_BYTES = 4 * 1024 * 1024 + 8 * 1024
/** Longest registry, repository or reference text accepted (distribution-spec names stay far below). */
const MAX_NAME_CHARS = 512
/** Lookups are short; pull-throughs hold a stream while the answerer fetches. Several layers at once per edge. */
export const MAX_FLEET_STREAMS_PER_CONNECTION = 32
/**
 * How long an answer to a pull-through may take: the answerer fetches the whole blob from its
 * upstream before it answers (a GiB layer on an edge site's uplink takes minutes).
 */
export const FLEET_PULL_THROUGH_TIMEOUT_MS = 10 * 60 * 1000
/** A lookup without pull-through reads the answerer's store only. */
export const FLEET_LOOKUP_TIMEOUT_MS = 5 * 1000

export interface FleetQuery {
  kind: 'find-digest' | 'resolve-tag'
  registry: string
  repository: string
  /** `sha256:<hex>` for find-digest, a tag for resolve-tag. */
  reference: string
  pullThrough: boolean
  /** find-digest: the digest names a manifest or index, not a blob. */
  manifest?: boolean
}

export type FleetAnswer =
  | { status: 'found', bundleId: string }
  /**
   * `bundleId`: the bundle the answerer's ref for the tag names, when that ref names this very
   * manifest (the held path's bundle, so the asker starts the same single pull); absent from
   * an answerer that resolved the tag only through its upstream, or that predates the field.
   */
  | { status: 'resolved', digest: string, mediaType: string, manifest: Uint8Array, bundleId?: string }
  | { status: 'not-found' | 'unavailable', reason: string }

/** What a node answers (the daemon's sources); `from` is the asking peer. */
export type FleetResponder = (query: FleetQuery, from: string, signal: AbortSignal) => Promise<FleetAnswer>

const DIGEST = /^sha256:[0-9a-f]{64}$/

export async function serveFleetRequest (respond: FleetResponder | undefined, stream: Stream, connection: Connection, lifetime: AbortSignal): Promise<void> {
  // Attached before the first await: data that arrives with no listener would be buffered.
  const frames = new FrameQueue(stream, { maxFrameBytes: MAX_FLEET_REQUEST_BYTES, messageTimeoutMs: MESSAGE_TIMEOUT_MS, maxQueuedFrames: 0 })
  const gone = new AbortController()
  stream.addEventListener('close', () => { gone.abort(new Error('the asker closed the stream')) }, { once: true })
  try {
    const query = parseQuery(FleetRequest.decode(await frames.next({ timeoutMs: FIRST_MESSAGE_TIMEOUT_MS })))
    const signal = abortAfter(query.pullThrough ? FLEET_PULL_THROUGH_TIMEOUT_MS : FLEET_LOOKUP_TIMEOUT_MS, AbortSignal.any([lifetime, gone.signal]))
    const answer = respond === undefined
      ? { status: 'not-found' as const, reason: 'this node answers no fleet requests' }
      : await respond(query, connection.remotePeer.toString(), signal)
    await sendFrame(stream, FleetResponse.encode(encodeAnswer(answer)))
    await stream.close()
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  }
}

/** Asks one peer; throws on a broken exchange (BadDataError when the answer does not check out). */
export async function askFleetPeer (connection: Connection, query: FleetQuery, options: { signal: AbortSignal }): Promise<FleetAnswer> {
  const stream = await connection.newStream(FLEET_PROTOCOL, { signal: abortAfter(STREAM_OPEN_TIMEOUT_MS, options.signal) })
  const frames = new FrameQueue(stream, { maxFrameBytes: MAX_FLEET_RESPONSE_BYTES, messageTimeoutMs: MESSAGE_TIMEOUT_MS, maxQueuedFrames: 0 })
  try {
    await sendFrame(stream, FleetRequest.encode({
      kind: query.kind === 'find-digest' ? FleetRequest.Kind.FIND_DIGEST : FleetRequest.Kind.RESOLVE_TAG,
      registry: query.registry,
      repository: query.repository,
      reference: query.reference,
      pullThrough: query.pullThrough,
      manifest: query.manifest === true,
    }), options)
    const timeoutMs = query.pullThrough ? FLEET_PULL_THROUGH_TIMEOUT_MS : FLEET_LOOKUP_TIMEOUT_MS
    const response = FleetResponse.decode(await frames.next({ timeoutMs, signal: options.signal }))
    await stream.close(options)
    return decodeAnswer(query, response)
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

function parseQuery (request: FleetRequest): FleetQuery {
  const kind = request.kind === FleetRequest.Kind.FIND_DIGEST ? 'find-digest' : request.kind === FleetRequest.Kind.RESOLVE_TAG ? 'resolve-tag' : undefined
  if (kind === undefined) throw new ProtocolViolationError(`fleet request kind ${String(request.kind)}`)
  for (const text of [request.registry, request.repository, request.reference]) {
    if (text === '' || text.length > MAX_NAME_CHARS) throw new ProtocolViolationError('a fleet request names nothing, or too long a name')
  }
  if (kind === 'find-digest' && !DIGEST.test(request.reference)) throw new ProtocolViolationError('a fleet lookup by digest without a sha256 digest')
  return { kind, registry: request.registry, repository: request.repository, reference: request.reference, pullThrough: request.pullThrough, manifest: request.manifest }
}

function encodeAnswer (answer: FleetAnswer): Partial<FleetResponse> {
  switch (answer.status) {
    case 'found': return { status: FleetResponse.Status.FOUND, bundleId: idToBytes(answer.bundleId) }
    case 'resolved': return { status: FleetResponse.Status.FOUND, digest: answer.digest, mediaType: answer.mediaType, manifest: new Uint8Array(answer.manifest), ...(answer.bundleId === undefined ? {} : { bundleId: idToBytes(answer.bundleId) }) }
    case 'not-found': return { status: FleetResponse.Status.NOT_FOUND, reason: answer.reason.slice(0, 1000) }
    case 'unavailable': return { status: FleetResponse.Status.UNAVAILABLE, reason: answer.reason.slice(0, 1000) }
  }
}

function decodeAnswer (query: FleetQuery, response: FleetResponse): FleetAnswer {
  if (response.status === FleetResponse.Status.NOT_FOUND) return { status: 'not-found', reason: response.reason }
  if (response.status === FleetResponse.Status.UNAVAILABLE) return { status: 'unavailable', reason: response.reason }
  if (response.status !== FleetResponse.Status.FOUND) throw new ProtocolViolationError(`fleet response status ${String(response.status)}`)
  if (query.kind === 'find-digest') {
    if (response.bundleId.byteLength !== 32) throw new BadDataError('a fleet answer names a bundle ID that is not 32 bytes')
    return { status: 'found', bundleId: bytesToId(response.bundleId) }
  }
  if (!DIGEST.test(response.digest)) throw new BadDataError('a fleet answer for a tag has no sha256 digest')
  if (`sha256:${sha256Hex(response.manifest)}` !== response.digest) throw new BadDataError(`the manifest sent for ${query.repository}:${query.reference} does not hash to ${response.digest}`)
  // An answerer before the field sends none: the tag still resolves, with no bundle named.
  if (response.bundleId.byteLength === 0) return { status: 'resolved', digest: response.digest, mediaType: response.mediaType, manifest: response.manifest }
  if (response.bundleId.byteLength !== 32) throw new BadDataError('a fleet answer for a tag names a bundle ID that is not 32 bytes')
  return { status: 'resolved', digest: response.digest, mediaType: response.mediaType, manifest: response.manifest, bundleId: bytesToId(response.bundleId) }
}

/** A peer the asker may ask: connected, trusted, not banned. */
export interface FleetPeer {
  peer: string
  connection: Connection
  gateway: boolean
}

export interface FleetResult {
  /** The first answer that had it, and who gave it; undefined when nobody had it. */
  found?: Extract<FleetAnswer, { status: 'found' | 'resolved' }>
  peer?: string
  /** Who was asked and did not have it, and why. */
  misses: Array<{ peer: string, reason: string }>
}

/** The order pull-through asks peers in: gateways first, then by peer ID, the same on every edge (so one node's single flight serves the fleet). */
export function pullThroughOrder (peers: FleetPeer[]): FleetPeer[] {
  return [...peers].sort((a, b) => Number(b.gateway) - Number(a.gateway) || (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))
}

export interface FleetAskOptions {
  signal: AbortSignal
  /**
   * Skip the first round: a tag this node holds is checked again with the node that would pull
   * it through, which re-resolves it at its upstream (a peer's store only repeats what this node
   * was told, so a tag moved at the registry would never be seen).
   */
  recheck?: boolean
}

/**
 * Asks the trusted peers, in two rounds: first every one of them at once for what it holds
 * (cheap, read from its store); then, only if none does and the query allows it, one at a
 * time for a pull-through, gateways first and then by peer ID, so every edge of a fleet asks
 * the same node and that node's single flight fetches each thing from the registry once.
 * With `recheck`, the second round only (FleetAskOptions).
 */
export class FleetAsker {
  constructor (private readonly peers: () => FleetPeer[], private readonly onBadData: (peer: string, err: BadDataError) => void) {}

  async ask (query: FleetQuery, options: FleetAskOptions): Promise<FleetResult> {
    const peers = this.peers()
    const misses: Array<{ peer: string, reason: string }> = []
    if (peers.length === 0) return { misses: [{ peer: '-', reason: 'no trusted peer is connected' }] }
    if (options.recheck !== true || !query.pullThrough) {
      const lookup = await this.first(peers, { ...query, pullThrough: false }, options.signal, misses)
      if (lookup !== undefined || !query.pullThrough) return lookup ?? { misses }
    }
    for (const peer of pullThroughOrder(peers)) {
      const found = await this.first([peer], query, options.signal, misses)
      if (found !== undefined) return found
    }
    return { misses }
  }

  /** Asks `peers` at once; the first that has it wins and the others are let go. */
  private async first (peers: FleetPeer[], query: FleetQuery, signal: AbortSignal, misses: Array<{ peer: string, reason: string }>): Promise<FleetResult | undefined> {
    const done = new AbortController()
    const both = AbortSignal.any([signal, done.signal])
    try {
      return await new Promise<FleetResult | undefined>((resolve) => {
        let pending = peers.length
        for (const { peer, connection } of peers) {
          void askFleetPeer(connection, query, { signal: both }).then((answer) => {
            if (answer.status === 'found' || answer.status === 'resolved') resolve({ found: answer, peer, misses })
            else misses.push({ peer, reason: `${answer.status}: ${answer.reason}` })
          }, (err: unknown) => {
            if (err instanceof BadDataError) this.onBadData(peer, err)
            if (!both.aborted) misses.push({ peer, reason: err instanceof Error ? err.message : String(err) })
          }).finally(() => {
            if (--pending === 0) resolve(undefined)
          })
        }
      })
    } finally {
      done.abort(new Error('answered'))
    }
  }
}
