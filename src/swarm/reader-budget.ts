import { RecentMap } from '../recent/index.js'
import { sleep } from '../wait/index.js'
import type { PeerKey } from './have-list.js'
import type { ChunkStream } from './chunk-stream.js'

/**
 * How many chunk bytes we may have sent a peer that it has not read yet. A stranger may hold
 * only a small budget unread; a peer may hold as much unread as it has read so far. Issue 13's
 * flood: throwaway identities opened chunk streams, asked for every chunk and never read; each
 * could hold two yamux windows (2 x 16 MiB) of ours, and a gateway sent 65-186 MiB in 30 s to
 * identities that read none of it, disk reads, encryption and syscalls taken from the honest
 * edges. An honest asker reads at once, so its allowance grows with every chunk it takes and
 * soon exceeds anything the yamux windows let through; a peer that does not read is held to
 * `strangerBytes`, whatever it claims (advertisements cost nothing to fake; reading does).
 *
 * "Read" is what the asker's muxer credited back: yamux returns send window as the data
 * arrives at the reader (a reader that pauses, or is too busy to take its data, credits
 * nothing). The stream's send window is yamux's own field (`sendWindowCapacity`, not in
 * libp2p's Stream type); a stream without one counts only our own write buffer as unread.
 */

/** yamux's stream fields we read (see above). */
interface WindowedStream { sendWindowCapacity?: unknown }

/** One chunk stream's account: bytes sent on it, and what of them its reader has not taken. */
export class StreamGauge {
  private sent = 0
  /** The frame being sent now: its bytes not handed to the stream yet are in `sent` and in neither the window nor the write buffer. */
  private sending = 0
  /** Chunks read from disk for this stream and not yet sent: counted as unread already, so two streams of one peer cannot both pass the check before either sends. */
  private reserved = 0
  /** The send window when we started: what the reader credits back refills it to here. */
  private startWindow: number | undefined

  /**
   * `waitsOnReader`: whether the stream waits on its reader now (reader-clock.ts `running`):
   * then its reservations are stuck behind that wait, the reader's to free, not ours.
   */
  constructor (private readonly stream: ChunkStream, private readonly waitsOnReader: () => boolean = () => false) {
    this.startWindow = this.window()
  }

  /**
   * Counts a frame of `bytes` being handed to the stream; `handed` once its send returned or
   * failed. Until then its bytes not handed yet are unread, and none of them is read (`read`).
   */
  sentBytes (bytes: number): void {
    // Bytes sent on the stream before it was ours (the protocol's negotiation, ~40 bytes) are
    // credited back after: taken as the reader's reads of ours, they made a stream that had read
    // nothing look as if it read when its first chunk went (and started its reader clock over).
    // Nothing of ours is out before our first send, so the window then is where ours start from.
    const window = this.window()
    if (this.sent === 0 && window !== undefined && (this.startWindow === undefined || window > this.startWindow)) this.startWindow = window
    this.sent += bytes
    this.sending = bytes
  }

  /** The frame counted by `sentBytes` left our hands (or never will). */
  handed (): void {
    this.sending = 0
  }

  private window (): number | undefined {
    const window = (this.stream as WindowedStream).sendWindowCapacity
    return typeof window === 'number' ? window : undefined
  }

  /** A chunk of at most `bytes` is being read to be sent on this stream. */
  reserve (bytes: number): void {
    this.reserved += bytes
  }

  /** The chunk reserved for was sent (and counted by `sentBytes`) or will not be. */
  release (bytes: number): void {
    this.reserved = Math.max(0, this.reserved - bytes)
  }

  /** Bytes on their way to the reader that it has not taken: reserved, in our write buffer, or out of the send window. */
  unread (): number {
    return this.inFlight() + this.reserved
  }

  /**
   * Bytes we sent that the reader has taken. A frame being sent counts only once sent: its part
   * not handed yet is in neither the window nor the write buffer, and counted as read it made
   * the peer's allowance (and a reader clock, reader-clock.ts) see reads that never were.
   */
  read (): number {
    const sent = this.sent - this.sending
    return sent - Math.min(sent, this.uncredited())
  }

  /**
   * Bytes the reader holds up: handed to the stream and not taken, and, while the stream waits on
   * its reader (a send stuck, its pace), the chunks reserved for it too. A chunk stuck in its send
   * stays reserved until the send ends, and one read ahead waits behind it: counted as ours (on
   * its way from disk, at our upload cap), they paused the reader clock of the peer's other
   * streams waiting for budget room until this stream was charged and closed, and those were
   * charged 30 s after that, not after the reader stopped (docs/architecture.md, "Held by a
   * stuck send").
   */
  readerHeld (): number {
    return this.inFlight() + (this.waitsOnReader() ? this.reserved : 0)
  }

  /** Bytes handed to the stream that the reader has not taken: in our write buffer or out of the send window. */
  inFlight (): number {
    return Math.min(this.sent, this.uncredited())
  }

  /** Bytes out of the send window or in our write buffer. */
  private uncredited (): number {
    const window = this.window()
    const outOfWindow = this.startWindow !== undefined && window !== undefined ? Math.max(0, this.startWindow - window) : 0
    return outOfWindow + this.stream.writeBufferLength
  }
}

export interface ReaderBudgetInit {
  /** What a peer that has read nothing yet may hold unread. */
  strangerBytes: number
  /** How often a peer over its budget is looked at again (yamux signals no credit unless writes wait on it). */
  pollMs: number
  /** Peers whose reads are remembered after their streams closed; beyond this the oldest are forgotten. */
  maxPeers: number
}

export class ReaderBudget {
  private readonly gauges = new Map<PeerKey, Set<StreamGauge>>()
  /** Bytes read on streams that closed, per peer: a reconnecting reader keeps its allowance. */
  private readonly readBefore: RecentMap<PeerKey, number>

  constructor (private readonly init: ReaderBudgetInit) {
    this.readBefore = new RecentMap(init.maxPeers)
  }

  /** Starts counting a chunk stream to `peer`; `close` when the stream closes. */
  track (peer: PeerKey, stream: ChunkStream, waitsOnReader?: () => boolean): { gauge: StreamGauge, close: () => void } {
    const gauge = new StreamGauge(stream, waitsOnReader)
    let set = this.gauges.get(peer)
    if (set === undefined) {
      set = new Set()
      this.gauges.set(peer, set)
    }
    set.add(gauge)
    const close = (): void => {
      const open = this.gauges.get(peer)
      if (open?.delete(gauge) !== true) return
      if (open.size === 0) this.gauges.delete(peer)
      const read = gauge.read()
      if (read === 0) return
      this.readBefore.set(peer, (this.readBefore.get(peer) ?? 0) + read)
    }
    return { gauge, close }
  }

  /** Bytes sent to the peer on its open streams that it has not read. */
  unread (peer: PeerKey): number {
    let total = 0
    for (const gauge of this.gauges.get(peer) ?? []) total += gauge.unread()
    return total
  }

  /** Bytes handed to the peer's open streams that its reader has not taken (our reservations left out). */
  inFlight (peer: PeerKey): number {
    let total = 0
    for (const gauge of this.gauges.get(peer) ?? []) total += gauge.inFlight()
    return total
  }

  /** What the peer's reader holds up on its open streams (StreamGauge.readerHeld). */
  readerHeld (peer: PeerKey): number {
    let total = 0
    for (const gauge of this.gauges.get(peer) ?? []) total += gauge.readerHeld()
    return total
  }

  /** Bytes the peer has read of ours, open and closed streams together. */
  read (peer: PeerKey): number {
    let total = this.readBefore.get(peer) ?? 0
    for (const gauge of this.gauges.get(peer) ?? []) total += gauge.read()
    return total
  }

  /** What the peer may hold unread: the stranger's budget, or as much as it has read. */
  allowance (peer: PeerKey): number {
    return Math.max(this.init.strangerBytes, this.read(peer))
  }

  /** Whether `bytes` more may go to the peer now. */
  hasRoom (peer: PeerKey, bytes: number): boolean {
    return this.unread(peer) + bytes <= this.allowance(peer)
  }

  /**
   * Whether what the peer's reader holds up (not taken, or reserved behind a stream's wait on
   * its reader), with no reservation still in our hands, leaves no room for `bytes`.
   */
  readerHolds (peer: PeerKey, bytes: number): boolean {
    return this.readerHeld(peer) + bytes > this.allowance(peer)
  }

  /** Resolves once `bytes` more may go to the peer; rejects when `signal` aborts first. */
  async room (peer: PeerKey, bytes: number, signal: AbortSignal): Promise<void> {
    while (!this.hasRoom(peer, bytes)) await sleep(this.init.pollMs, signal)
  }
}
