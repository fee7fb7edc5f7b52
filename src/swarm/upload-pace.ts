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
 * bytes, at least `floorBytes` and at most `capBytes`: enough to keep the link busy while we
 * wake, read the next chunk and hand it down, no more. The cap bounds what a fast link that
 * stops (a busy asker, a congested path) can have committed before the rate shows it. yamux credits a frame when all of it has arrived, so chunks
 * go out in pieces (CHUNK_PIECE_BYTES) for the count to fall as the bytes arrive.
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
  capBytes: number
  targetMs: number
  /** Shortest and longest wait before looking again. */
  minWaitMs: number
  maxWaitMs: number
  now?: () => number
}

/** Rate samples shorter than this are noise (timer granularity). */
const MIN_SAMPLE_MS = 5
/** Weight of a new rate sample. */
const RATE_WEIGHT = 0.25

export class UploadPace {
  /** Bytes per millisecond the asker credited back while bytes were on their way to it; 0 until measured. */
  private rate = 0
  private lastRead = 0
  private lastAt: number
  /** Whether bytes were on their way at the last sample: an idle stream's zero rate says nothing of the link. */
  private busy = false
  private readonly now: () => number

  constructor (private readonly gauge: PacedGauge, private readonly init: UploadPaceInit) {
    this.now = init.now ?? Date.now
    this.lastAt = this.now()
  }

  lowWater (): number {
    return Math.min(this.init.capBytes, Math.max(this.init.floorBytes, this.rate * this.init.targetMs))
  }

  /** Whether the next chunk may be picked now. */
  hasRoom (): boolean {
    this.sample()
    return this.gauge.unread() <= this.lowWater()
  }

  /** How long to wait before asking again: about when the bytes above the mark should have arrived. */
  waitMs (): number {
    const above = this.gauge.unread() - this.lowWater()
    if (this.rate <= 0 || above <= 0) return this.init.minWaitMs
    return Math.min(this.init.maxWaitMs, Math.max(this.init.minWaitMs, above / this.rate))
  }

  private sample (): void {
    const now = this.now()
    const elapsed = now - this.lastAt
    // A sample runs on while it is short, unless the link was idle: then one starts now.
    if (elapsed < MIN_SAMPLE_MS && this.busy) return
    const read = this.gauge.read()
    const busy = this.gauge.inFlight() > 0
    // Only while bytes waited at both ends of the sample: a pipe that emptied meanwhile (the
    // asker had no requests, or we waited for its budget) would count as a slow link.
    if (this.busy && busy && elapsed >= MIN_SAMPLE_MS) {
      const rate = (read - this.lastRead) / elapsed
      this.rate = this.rate === 0 ? rate : this.rate * (1 - RATE_WEIGHT) + rate * RATE_WEIGHT
    }
    this.lastRead = read
    this.lastAt = now
    this.busy = busy
  }
}
