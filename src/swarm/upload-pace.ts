import { performance } from 'node:perf_hooks'
import { UPLOAD_PACE_CAP_BYTES, UPLOAD_PACE_GATEWAY_CAP_BYTES } from './constants.js'
import { DeliveryRate } from './delivery-rate.js'

/**
 * When the chunk server may pick an asker's next chunk: once what is on its way to the asker
 * (handed to the muxer and not yet credited back by the asker's yamux, plus chunks read and
 * not yet sent) is down to a low-water mark. A chunk handed to the muxer is below anything a
 * CANCEL can stop (yamux, noise or TLS, node's socket queue, the kernel); one still in our
 * queue costs nothing to cancel. Before this, every accepted request went to the muxer as soon
 * as its chunk was read, so on a slow link an end-game duplicate, a request moved to a faster
 * holder or a withdrawal from the gateway still crossed the wire whole (the CI fleet bed's
 * edges at 1.11-1.37x the bundle after one such chunk).
 *
 * The mark is what the link carries in `targetMs` at the rate the asker has been taking our
 * bytes (delivery-rate.ts), at least `floorBytes` and at most `capBytes`: enough to keep the
 * link busy while we wake, read the next chunk and hand it down, so a cancel costs at most
 * about `targetMs` of the link. The rate cannot be raised by credits that bunch up (bounded by
 * how fast we handed the bytes down; at worst twice the link's rate: at 40 Mbit/s that and
 * 50 ms stay under the floor, so a slow link keeps the floor's cheap cancels) nor lowered by
 * a late wake-up of ours (the highest recent sample). The cap is what a fast link may hold
 * before the asker's credits stop: on loopback a busy receiver's credits come tens of
 * milliseconds late, and a 1.5 MiB cap held bench-transfer to 31 MB/s against 48-130 unpaced.
 * yamux credits a frame when all of it has arrived, so on a slow link chunks go down in pieces
 * (CHUNK_PIECE_BYTES) for the count to fall as the bytes arrive.
 */

/** What the pace reads of a chunk stream's account (reader-budget.ts's StreamGauge). */
export interface PacedGauge {
  /** Bytes handed to the muxer that the asker has not credited back. */
  inFlight: () => number
  /** …plus chunks read for this stream and not yet sent. */
  unread: () => number
  /** Bytes the asker has credited back so far. */
  read: () => number
}

export interface UploadPaceInit {
  floorBytes: number
  /** Fixed, or looked up at each look (a gateway's depends on who else is asking it). */
  capBytes: number | (() => number)
  targetMs: number
  /** Shortest and longest wait before looking again. */
  minWaitMs: number
  maxWaitMs: number
  now?: () => number
}

/** The rate is the highest sample of this long (BBR's bandwidth filter covers ~10 round trips). */
const RATE_WINDOW_MS = 1_000
/** Samples over less than this are dropped (performance.now() is finer, but wake-ups are not). */
const MIN_SAMPLE_MS = 1

export class UploadPace {
  private readonly estimate = new DeliveryRate({ windowMs: RATE_WINDOW_MS, minIntervalMs: MIN_SAMPLE_MS })
  private readonly now: () => number

  constructor (private readonly gauge: PacedGauge, private readonly init: UploadPaceInit) {
    this.now = init.now ?? (() => performance.now())
  }

  /** Bytes per millisecond the asker takes; 0 until measured (or after a second with no sample). */
  rate (): number {
    return this.estimate.rate(this.now())
  }

  lowWater (): number {
    const cap = typeof this.init.capBytes === 'number' ? this.init.capBytes : this.init.capBytes()
    return Math.min(cap, Math.max(this.init.floorBytes, this.rate() * this.init.targetMs))
  }

  /**
   * Pieces a chunk goes down in: fine enough that the credits fall twice within the mark, and
   * never finer than `minBytes`. On a fast link the mark holds several chunks and a chunk goes
   * whole: every piece is a yamux frame, a window update back and a send call more.
   */
  pieceBytes (minBytes: number): number {
    // Whole bytes: a piece boundary is an offset into the frame.
    return Math.max(minBytes, Math.floor(this.lowWater() / 2))
  }

  /** A frame was handed to the muxer (and counted in the gauge). */
  sent (): void {
    const read = this.gauge.read()
    this.estimate.sent(read + this.gauge.inFlight(), read, this.now())
  }

  /** Whether the next chunk may be picked now. */
  hasRoom (): boolean {
    this.estimate.credited(this.gauge.read(), this.now())
    return this.gauge.unread() <= this.lowWater()
  }

  /** How long to wait before asking again: about when the bytes above the mark should have arrived. */
  waitMs (): number {
    const above = this.gauge.unread() - this.lowWater()
    const rate = this.rate()
    if (rate <= 0 || above <= 0) return this.init.minWaitMs
    return Math.min(this.init.maxWaitMs, Math.max(this.init.minWaitMs, above / rate))
  }
}

/**
 * A gateway's cap for one asker: a chunk and a half while another neighbour that passes chunks
 * on has requests queued with it (it is seeding a fleet, and a deep queue to one asker delays
 * the first copies the others would share: UPLOAD_PACE_GATEWAY_CAP_BYTES), the full cap while
 * that asker is the only one (there is nothing to share; every chunk goes to it anyway). Takers
 * do not count: a leech must not slow an honest edge down, as it must not hold one back
 * (chunk-protocol.ts yieldToSharers). With the small cap always, containerd's pull through a
 * cold edge whose neighbour is the gateway moved what one wake-up of each side allowed on a
 * busy machine: 1.5 MiB per round trip (docs/architecture.md, "containerd through an edge").
 */
export function gatewayPaceCapBytes (asker: string, askers: Iterable<{ peer: string, queuedRequests: number }>, isTaker: (peer: string) => boolean): number {
  for (const other of askers) {
    if (other.peer !== asker && other.queuedRequests > 0 && !isTaker(other.peer)) return UPLOAD_PACE_GATEWAY_CAP_BYTES
  }
  return UPLOAD_PACE_CAP_BYTES
}
