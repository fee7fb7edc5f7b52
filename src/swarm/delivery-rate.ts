/**
 * How fast an asker takes our bytes: delivery-rate sampling as BBR does it (IETF draft
 * "Delivery Rate Estimation", draft-cheng-iccrg-delivery-rate-estimation), with the asker's
 * yamux credits for acks and the frames we hand to the muxer for packets.
 *
 * Each frame remembers, when it is handed down, how much was credited then and when that was
 * first seen, and when the last credited frame had been handed down. When the frame is all
 * credited, one sample: the bytes after the credit it saw, up to its own end, over the longer
 * of the two intervals those same bytes took, the one we took to hand them down and the one
 * the asker took to credit them. Those bytes were handed down after the first interval began
 * and credited before the second ended, and those intervals cover between them everything
 * from the first byte handed down to the last credited, so a sample is never more than twice
 * the rate they really crossed at:
 *   - credits that bunch up (an asker whose event loop stalls, then credits a megabyte at
 *     once) are bounded by how fast we handed those bytes down. A rate from credits per
 *     interval jumped tenfold there, and the mark with it (pace-v2: a CI-bed edge at 1.63x);
 *   - a late wake-up of ours lengthens an interval, so it only lowers a sample, and the rate
 *     is the highest sample of the last `windowMs`: one late sample does not lower it. A rate
 *     from each chunk's hand-off to its last credit fed our own wake-up delays back into the
 *     mark (pace-estimator: loopback at 18-76 MB/s).
 * Credits are read when we look (the gauge is polled: yamux signals no credit), so a credit's
 * time is when we saw it; a credit seen late makes that sample lower, never higher.
 *
 * Pure: the caller gives the byte counts and the time.
 */

export interface DeliveryRateInit {
  /** The rate is the highest sample this recent (BBR's bandwidth filter). */
  windowMs: number
  /** Samples over a shorter interval are dropped: a clock this coarse cannot time them. */
  minIntervalMs: number
}

/** A frame handed down and not yet all credited, with what was known when it went. */
interface Sent {
  /** Bytes handed down on the stream once this frame was. */
  end: number
  sentAt: number
  /** Bytes credited when it went, and when that total was first seen. */
  delivered: number
  deliveredAt: number
  /** When the last frame credited by then had been handed down. */
  firstSentAt: number
}

export class DeliveryRate {
  private delivered = 0
  private deliveredAt = 0
  private firstSentAt = 0
  private readonly inFlight: Sent[] = []
  /** Samples of the window, rates strictly falling from the first (a sliding-window maximum). */
  private readonly samples: Array<{ at: number, rate: number }> = []

  constructor (private readonly init: DeliveryRateInit) {}

  /** A frame was handed down, ending at byte `end` of the stream; `delivered` bytes are credited now. */
  sent (end: number, delivered: number, now: number): void {
    this.credited(delivered, now)
    if (this.inFlight.length === 0) {
      // Nothing was on its way: the intervals start now, not at a credit or hand-off long
      // ago (an idle spell is not a slow link).
      this.deliveredAt = now
      this.firstSentAt = now
    }
    this.inFlight.push({ end, sentAt: now, delivered: this.delivered, deliveredAt: this.deliveredAt, firstSentAt: this.firstSentAt })
  }

  /** `delivered` bytes of the stream are credited back, as seen `now`. */
  credited (delivered: number, now: number): void {
    if (delivered <= this.delivered) return
    this.delivered = delivered
    this.deliveredAt = now
    // The frame handed down last of those now all credited measures the most recent bytes.
    let last: Sent | undefined
    while (this.inFlight.length > 0 && (this.inFlight[0] as Sent).end <= delivered) last = this.inFlight.shift()
    if (last === undefined) return
    this.firstSentAt = last.sentAt
    const interval = Math.max(last.sentAt - last.firstSentAt, now - last.deliveredAt)
    if (interval < this.init.minIntervalMs) return
    // Only up to its own end: bytes credited past it went down after it, outside the send interval.
    this.addSample((last.end - last.delivered) / interval, now)
  }

  /** Bytes per millisecond: the highest sample of the window; 0 with none. */
  rate (now: number): number {
    const from = now - this.init.windowMs
    while (this.samples.length > 0 && (this.samples[0] as { at: number }).at < from) this.samples.shift()
    return this.samples[0]?.rate ?? 0
  }

  private addSample (rate: number, at: number): void {
    // A later sample outlives every earlier one it equals or beats: those can never be the maximum again.
    while (this.samples.length > 0 && (this.samples.at(-1) as { rate: number }).rate <= rate) this.samples.pop()
    this.samples.push({ at, rate })
  }
}
