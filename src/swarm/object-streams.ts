import { OBJECT_STREAM_CHUNK_TIMEOUT_MS, OBJECT_STREAM_RETRY_MS } from './constants.js'
import { LaneClosedError, ProtocolViolationError } from './errors.js'
import type { HaveList } from './have-list.js'
import type { LaneStream } from './lane-stream.js'
import type { LocalBundles } from './local-bundles.js'
import { receiveObject, type ObjectReceipt } from './object-stream-receiver.js'
import { RecentMap } from '../recent/index.js'
import { wakeOrTimeout } from '../wait/index.js'
import type { SwarmEventEmitter } from './swarm-events.js'
import type { SwarmLogger } from './swarm-options.js'

/** How long an ended stream waits for its lane to close before the objects still waited on are considered again. */
const LANE_CLOSE_WAIT_MS = 1_000

/** (peer, object) pairs not asked for an object lane again until a time: a bound on what refusals make us remember. */
const MAX_REMEMBERED_REFUSALS = 4096

export interface ObjectStreamsComponents {
  haveList: HaveList
  local: LocalBundles
  log: SwarmLogger
  events: SwarmEventEmitter
  /** A lane to `peer` for one object, or undefined (no listener there, its lanes taken, failed lately). */
  openLane: (peer: string, signal: AbortSignal) => Promise<LaneStream | undefined>
  /** Whether `peer` is a neighbour the fetcher may ask now, and whether it is a gateway (asked last, as the scheduler asks them). */
  usable: (peer: string) => boolean
  isGateway: (peer: string) => boolean
  /**
   * Takes `object` out of the chunk scheduler (its requests cancelled) and says the first chunk
   * the stream is to bring, or undefined when it is not worth a stream any more (done, unwanted,
   * too few chunks left).
   */
  claim: (object: string) => number | undefined
  /** Hands `object` back to the chunk scheduler: what the stream did not bring is asked for chunk by chunk (nothing, if it is complete or unwanted). */
  release: (object: string) => void
  /** The receipt's memory and its store (the fetcher's buffers and chunk path). */
  take: ObjectReceipt['take']
  giveBack: ObjectReceipt['giveBack']
  /** Checks and stores a chunk; resolves once its memory is free; `onBad` hears if it failed its check or could not be stored. */
  chunk: (peer: string, object: string, index: number, bytes: Uint8Array, onBad: (err: Error) => void) => Promise<void>
  onViolation: (peer: string, detail: string) => void
  /** A stream that held a lane ended: objects still waited on may have one now (a peer's lanes are two). */
  onEnded: () => void
  maxBufferedChunks: number
}

/**
 * Which objects come whole over an object lane, and from whom (docs/architecture.md "A whole
 * object over one lane"). An object a client waits on, with enough chunks left, that a connected
 * neighbour advertises whole, is asked of one such holder (edges before gateways) as one stream;
 * the chunk scheduler lets it go meanwhile. Anything short of the whole object (a refusal, a lane
 * that fails, stalls or brings a chunk that fails its check) hands what is left back to the
 * scheduler, which asks every holder chunk by chunk as before, and that holder is not asked for
 * the object on a lane again for OBJECT_STREAM_RETRY_MS. The bytes are checked and stored as the
 * chunk path's are: nothing reaches the store or a client unverified.
 */
export class ObjectStreams {
  /** Objects with a stream opening or running, and what stops it. */
  private readonly running = new Map<string, AbortController>()
  /** `peer|object` → until when that peer is not asked for that object on a lane. */
  private readonly refused = new RecentMap<string, number>(MAX_REMEMBERED_REFUSALS)
  private readonly counts = { started: 0, completed: 0, fellBack: 0 }

  constructor (private readonly components: ObjectStreamsComponents, private readonly lifetime: () => AbortSignal) {}

  /** Whether `object` is being streamed (the scheduler is not to want it meanwhile). */
  has (object: string): boolean {
    return this.running.has(object)
  }

  stats (): { started: number, completed: number, fellBack: number } {
    return { ...this.counts }
  }

  /** A client waits on `object` (or a holder of it appeared): stream it if a whole holder can. */
  consider (object: string): void {
    if (this.running.has(object)) return
    const holder = this.pickHolder(object)
    if (holder === undefined) return
    const stop = new AbortController()
    this.running.set(object, stop)
    void this.run(holder, object, stop)
  }

  /** Stops `object`'s stream (it completed elsewhere, or no pull wants it any more). */
  stop (object: string): void {
    this.running.get(object)?.abort(new LaneClosedError('the object is no longer wanted from this stream'))
    this.running.delete(object)
  }

  stopAll (reason: Error): void {
    for (const stop of this.running.values()) stop.abort(reason)
    this.running.clear()
  }

  private pickHolder (object: string): string | undefined {
    const now = Date.now()
    const whole = this.components.haveList.holdersOf(object)
      .filter(([peer, holding]) => holding === true && this.components.usable(peer) && (this.refused.get(`${peer}|${object}`) ?? 0) <= now)
      .map(([peer]) => peer)
    const edges = whole.filter(peer => !this.components.isGateway(peer))
    const from = edges.length > 0 ? edges : whole
    return from[Math.floor(Math.random() * from.length)]
  }

  /** Until it ends, `object` is `stop`'s in `running`; the scheduler has it back after, unless another stream took it meanwhile. */
  private async run (peer: string, object: string, stop: AbortController): Promise<void> {
    const { components } = this
    const signal = AbortSignal.any([stop.signal, this.lifetime()])
    const ended = (): void => {
      if (this.running.get(object) === stop) this.running.delete(object)
    }
    const size = components.local.object(object)?.size
    const lane = size === undefined ? undefined : await components.openLane(peer, signal).catch(() => undefined)
    const firstIndex = lane === undefined || signal.aborted ? undefined : components.claim(object)
    if (size === undefined || lane === undefined || firstIndex === undefined) {
      // Never claimed: the chunk scheduler kept it all along.
      lane?.abort(new LaneClosedError('the object needs no stream any more'))
      ended()
      return
    }
    this.counts.started++
    const startedAt = Date.now()
    // A chunk that fails its check (or cannot be stored) ends the stream with that reason.
    const bad = new AbortController()
    let completed = false
    try {
      const outcome = await receiveObject(lane, {
        object,
        size,
        firstIndex,
        take: components.take,
        giveBack: components.giveBack,
        chunk: async (index, bytes) => { await components.chunk(peer, object, index, bytes, (err) => { bad.abort(err) }) },
        maxBufferedChunks: components.maxBufferedChunks,
        chunkTimeoutMs: OBJECT_STREAM_CHUNK_TIMEOUT_MS,
        signal: AbortSignal.any([signal, bad.signal]),
      })
      components.events.emit('object-stream:ended', { peer, object, outcome })
      if (outcome === 'complete') {
        completed = true
        this.counts.completed++
        components.log.debug('object streamed whole', { peer, object, firstIndex, ms: Date.now() - startedAt })
      } else {
        this.notAgain(peer, object)
        this.counts.fellBack++
        components.log.debug('object lane refused; its chunks go one by one', { peer, object, outcome })
      }
    } catch (err) {
      components.events.emit('object-stream:ended', { peer, object, outcome: 'failed', reason: (err as Error).message })
      // Stopped here (the object completed by another way, no pull wants it, the swarm stops): nothing falls back.
      if (signal.aborted) return
      this.counts.fellBack++
      this.notAgain(peer, object)
      if (err instanceof ProtocolViolationError) components.onViolation(peer, `object lane: ${err.message}`)
      components.log.info('an object lane ended short of the object; the rest is asked for chunk by chunk', { peer, object, error: (err as Error).message })
    } finally {
      ended()
      // A whole stream's chunks are all written or being committed: the store completes the object.
      if (!completed && !this.running.has(object)) components.release(object)
      // The next stream to this peer needs the lane's place: it counts until it has closed.
      if (lane.status !== 'closed' && lane.status !== 'aborted') {
        await wakeOrTimeout((wake) => {
          lane.addEventListener('close', wake)
          return () => { lane.removeEventListener('close', wake) }
        }, { timeoutMs: LANE_CLOSE_WAIT_MS })
      }
      components.onEnded()
    }
  }

  private notAgain (peer: string, object: string): void {
    this.refused.set(`${peer}|${object}`, Date.now() + OBJECT_STREAM_RETRY_MS)
  }
}

