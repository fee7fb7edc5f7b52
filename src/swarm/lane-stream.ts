import { StreamCloseEvent, StreamMessageEvent, type MessageStreamEvents, type MessageStreamStatus } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { TLSSocket } from 'node:tls'
import { LANE_CREDIT_BYTES } from './constants.js'
import { LaneClosedError, ProtocolViolationError } from './errors.js'
import { LaneRecordReader, MAX_LANE_RECORD_BYTES, creditRecords, dataRecordHead } from './lane-records.js'
import type { AskerTls, ReadPlace } from './lane-transport.js'

/** After our FIN, the remote has this long to send its own. */
const CLOSE_GRACE_MS = 10_000
/** Where the holder's emulated send window starts (any number far above what a lane carries). */
const WINDOW_BASE = Number.MAX_SAFE_INTEGER

type EventListenerArg = Parameters<EventTarget['addEventListener']>[1]
type Listener<K extends keyof MessageStreamEvents> = ((evt: MessageStreamEvents[K]) => void) | { handleEvent: (evt: MessageStreamEvents[K]) => void }

/** Which end of the lane: the asker sends requests and credits, the holder sends chunks. */
export type LaneRole = 'asker' | 'holder'

/**
 * A lane's TLS socket as one chunk stream: the socket carries one stream and nothing else, so
 * there is no muxer. `send` hands the bytes to node's TLS record layer (C++ from the write to
 * the TCP handle: the lane's whole point) and says false once node's queue is past its
 * high-water mark; 'drain' and 'idle' come when node has handed everything to the kernel.
 *
 * The one thing taken from a muxer is its credit: the asker's direction is records
 * (lane-records.ts), and the asker credits the holder's bytes as they arrive, every
 * LANE_CREDIT_BYTES. The holder shows what is credited as yamux's `sendWindowCapacity`, so
 * the chunk server's pace and reader budget (reader-budget.ts) count what sits in either
 * kernel's socket buffers as unread, as they do on libp2p, and a cancel still finds the next
 * chunk unsent. Without it a slow link's kernel buffers held chunks the asker had cancelled
 * (docs/architecture.md, "A data lane beside libp2p").
 */
export class LaneStream {
  status: MessageStreamStatus = 'open'
  private readonly events = new EventTarget()
  private ended = false
  /** Payload bytes each way (TLS records' overhead not counted), for the swarm's lane counters. */
  bytesIn = 0
  bytesOut = 0
  /** The holder's: bytes the asker has credited. */
  private credited = 0
  /** The asker's: bytes received and not yet credited; judged at the end of each turn (readWith's `turnEnded`). */
  private uncredited = 0
  /** The asker's: credits are sent (a chunk stream's holder paces on them; an object lane's holder on TCP alone). */
  private crediting = true
  private readonly records: LaneRecordReader | undefined

  /** The one reader given the received bytes directly (readLent), in place of 'message' events. */
  private lentReader: ((bytes: Uint8Array) => void) | undefined
  /** Where that reader wants the next bytes read (lane-transport.ts ReadPlace). */
  private lentPlace: ReadPlace | undefined

  /**
   * `readWith`, the asker's socket's from connectAskerTls (lane-transport.ts), hands over its
   * cleartext lent from one reused buffer instead of as the socket's 'data', and says when each
   * turn's bytes are all in (when the asker's credit is judged). The holder reads 'data'.
   */
  constructor (socket: TLSSocket, idleTimeoutMs: number, role: 'holder')
  constructor (socket: TLSSocket, idleTimeoutMs: number, role: 'asker', readWith: AskerTls['readWith'])
  constructor (private readonly socket: TLSSocket, idleTimeoutMs: number, private readonly role: LaneRole, readWith?: AskerTls['readWith']) {
    this.records = role === 'holder'
      ? new LaneRecordReader({
        data: (bytes) => {
          this.bytesIn += bytes.byteLength
          this.deliver(bytes, false)
        },
        credit: (bytes) => {
          this.credited += bytes
          // Nobody can have taken more than we sent.
          if (this.credited > this.bytesOut) throw new ProtocolViolationError(`a lane credit for ${this.credited} bytes of the ${this.bytesOut} sent`)
        },
      })
      : undefined
    // Only the asker's bytes go to the reader as they come (the holder's are records to take apart).
    const place = (): Uint8Array | undefined => this.records === undefined && this.status === 'open' ? this.lentPlace?.() : undefined
    if (readWith !== undefined) readWith((bytes) => { this.received(bytes, true) }, place, () => { this.creditTurn() })
    else socket.on('data', (data: Buffer) => { this.received(data, false) })
    socket.on('end', () => {
      // The holder ends its side only after the asker ended its own (the chunk server answers
      // until then), so an end first is an abort (a disconnect, a ban, its timeouts), sent as
      // TCP's FIN: as yamux's reset, not as a message cut short by the holder's fault (which
      // charged honest holders a violation on the 16-host bed).
      if (this.role === 'asker' && !socket.writableEnded) {
        this.finish(new LaneClosedError('the holder closed the lane'))
        return
      }
      if (this.records?.atBoundary === false) {
        this.finish(new ProtocolViolationError('the lane ended inside a record'))
        return
      }
      this.ended = true
      this.events.dispatchEvent(new Event('remoteCloseWrite'))
      // Both halves done: the stream is over (a half-closed socket is ended by us).
      if (socket.writableEnded) this.finish(undefined)
    })
    socket.on('drain', () => {
      this.events.dispatchEvent(new Event('drain'))
      if (socket.writableLength === 0) this.events.dispatchEvent(new Event('idle'))
    })
    socket.on('error', (err) => { this.finish(new LaneClosedError(err.message, { cause: err })) })
    socket.on('close', () => { this.finish(this.status === 'open' ? new LaneClosedError('the lane closed') : undefined) })
    // Idle: closed like a finished stream (both sides end their writes), not as a failure.
    socket.setTimeout(idleTimeoutMs, () => { void this.close() })
  }

  /** Bytes from the socket; `lent` ones are reused once this returns. */
  private received (data: Uint8Array, lent: boolean): void {
    if (this.status !== 'open' && this.status !== 'closing') return
    if (this.records === undefined) {
      this.bytesIn += data.byteLength
      this.deliver(data, lent)
      this.uncredited += data.byteLength
      return
    }
    try {
      this.records.push(data)
    } catch (err) {
      this.finish(err instanceof Error ? err : new ProtocolViolationError(String(err)))
    }
  }

  private deliver (bytes: Uint8Array, lent: boolean): void {
    if (this.lentReader !== undefined) this.lentReader(bytes)
    // A copy of lent bytes: Buffer's `slice` is a view (the asker's bytes are a Buffer's), which
    // the next TLS record overwrote under a 'message' reader that kept it (a blob stream's frames).
    else this.events.dispatchEvent(new StreamMessageEvent(lent ? Uint8Array.prototype.slice.call(bytes) : bytes))
  }

  /** From now on the received bytes go to `reader` alone, lent for the call, read where `place` says (chunk-stream.ts LendingStream). */
  readLent (reader: (bytes: Uint8Array) => void, place?: ReadPlace): void {
    this.lentReader = reader
    this.lentPlace = place
  }

  /**
   * Stops reading the socket (an object lane's reader with all its memory waiting on the store
   * or the client): the holder's bytes wait in the kernels' buffers and then in its own. Node may
   * still hand over what it already decrypted, so the reader keeps room for one more piece.
   */
  pauseReading (): void {
    this.socket.pause()
  }

  resumeReading (): void {
    this.socket.resume()
  }

  get writeBufferLength (): number {
    return this.socket.writableLength
  }

  /**
   * The holder's send window as yamux shows it (reader-budget.ts reads this field): it shrinks
   * by what node handed to the kernel and grows back by the asker's credits. The asker has none.
   */
  get sendWindowCapacity (): number | undefined {
    if (this.role !== 'holder') return undefined
    return WINDOW_BASE - Math.max(0, this.bytesOut - this.socket.writableLength - this.credited)
  }

  send (data: Uint8Array | Uint8ArrayList): boolean {
    if (this.status !== 'open' || this.socket.writableEnded) throw new LaneClosedError(`the lane is ${this.status}`)
    this.bytesOut += data.byteLength
    let room = true
    // One cork for the pieces of one message: one TLS record run, not one per piece.
    this.socket.cork()
    if (this.role === 'holder') {
      for (const piece of data instanceof Uint8Array ? [data] : data) room = this.socket.write(piece)
    } else {
      for (const piece of data instanceof Uint8Array ? [data] : data) {
        for (let at = 0; at < piece.byteLength; at += MAX_LANE_RECORD_BYTES) {
          const part = piece.subarray(at, Math.min(piece.byteLength, at + MAX_LANE_RECORD_BYTES))
          this.socket.write(dataRecordHead(part.byteLength))
          room = this.socket.write(part)
        }
      }
    }
    this.socket.uncork()
    return room
  }

  /**
   * Sends `bytes` as one write (the holder's chunks): node's TLS encrypts a single buffer
   * straight from its memory, where a write of several (send's corked pieces) is first joined
   * into a fresh copy. The bytes are read until the write completes: `written` runs then (and
   * not at all if the lane died first, so the memory is never reused under a write).
   */
  sendBorrowed (bytes: Uint8Array, written: () => void): boolean {
    if (this.status !== 'open' || this.socket.writableEnded) throw new LaneClosedError(`the lane is ${this.status}`)
    if (this.role !== 'holder') {
      // The asker's direction is records (a head per piece): nothing to gain, send a copy.
      const room = this.send(new Uint8Array(bytes))
      written()
      return room
    }
    this.bytesOut += bytes.byteLength
    return this.socket.write(bytes, (err) => { if (err === null || err === undefined) written() })
  }

  /** The asker sends no credits from now on: its holder paces on TCP's window alone (an object lane), and each credit was a TLS record each way. */
  stopCrediting (): void {
    this.crediting = false
  }

  /** The end of a turn whose bytes were all handed over: the credit, once LANE_CREDIT_BYTES are due, goes now (at most once a turn). */
  private creditTurn (): void {
    if (!this.crediting || this.uncredited < LANE_CREDIT_BYTES || this.status !== 'open' || this.socket.writableEnded) return
    this.socket.write(creditRecords(this.uncredited))
    this.uncredited = 0
  }

  async close (): Promise<void> {
    if (this.status !== 'open') return
    this.status = 'closing'
    // A remote that never ends its side is not waited for past this.
    const guard = setTimeout(() => { this.finish(undefined) }, CLOSE_GRACE_MS)
    guard.unref()
    this.events.addEventListener('close', () => { clearTimeout(guard) }, { once: true })
    await new Promise<void>((resolve) => { this.socket.end(resolve) })
    if (this.ended) this.finish(undefined)
  }

  abort (err: Error): void {
    if (this.status === 'closed' || this.status === 'aborted') return
    this.finish(err)
  }

  addEventListener<K extends keyof MessageStreamEvents>(type: K, listener: Listener<K> | null, options?: Parameters<EventTarget['addEventListener']>[2]): void {
    this.events.addEventListener(type, listener as EventListenerArg, options)
  }

  removeEventListener<K extends keyof MessageStreamEvents>(type: K, listener?: Listener<K> | null, options?: Parameters<EventTarget['removeEventListener']>[2]): void {
    this.events.removeEventListener(type, (listener ?? null) as EventListenerArg, options)
  }

  private finish (err: Error | undefined): void {
    if (this.status === 'closed' || this.status === 'aborted') return
    this.status = err === undefined ? 'closed' : 'aborted'
    this.socket.destroy()
    this.events.dispatchEvent(new StreamCloseEvent(true, err))
  }
}
