import { StreamCloseEvent, StreamMessageEvent, type MessageStreamEvents, type MessageStreamStatus } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { TLSSocket } from 'node:tls'
import { LaneClosedError } from './errors.js'

/** After our FIN, the remote has this long to send its own. */
const CLOSE_GRACE_MS = 10_000

type EventListenerArg = Parameters<EventTarget['addEventListener']>[1]
type Listener<K extends keyof MessageStreamEvents> = ((evt: MessageStreamEvents[K]) => void) | { handleEvent: (evt: MessageStreamEvents[K]) => void }

/**
 * A lane's TLS socket as one chunk stream: the socket carries one stream and nothing else, so
 * there is no muxer, no framing of its own and no credit window. `send` hands the bytes to
 * node's TLS record layer (C++ from the write to the TCP handle: the lane's whole point) and
 * says false once node's queue is past its high-water mark; 'drain' and 'idle' come when
 * node has handed everything to the kernel. What the kernel holds counts as sent: the
 * chunk server's pace and reader budget see only node's queue (docs/architecture.md).
 */
export class LaneStream {
  status: MessageStreamStatus = 'open'
  private readonly events = new EventTarget()
  private ended = false
  /** Payload bytes each way (TLS records' overhead not counted), for the swarm's lane counters. */
  bytesIn = 0
  bytesOut = 0

  constructor (private readonly socket: TLSSocket, idleTimeoutMs: number) {
    socket.on('data', (data: Buffer) => {
      if (this.status !== 'open' && this.status !== 'closing') return
      this.bytesIn += data.byteLength
      this.events.dispatchEvent(new StreamMessageEvent(data))
    })
    socket.on('end', () => {
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

  get writeBufferLength (): number {
    return this.socket.writableLength
  }

  send (data: Uint8Array | Uint8ArrayList): boolean {
    if (this.status !== 'open' || this.socket.writableEnded) throw new LaneClosedError(`the lane is ${this.status}`)
    this.bytesOut += data.byteLength
    if (data instanceof Uint8Array) return this.socket.write(data)
    let room = true
    // One cork for the pieces of one message: one TLS record run, not one per piece.
    this.socket.cork()
    for (const piece of data) room = this.socket.write(piece)
    this.socket.uncork()
    return room
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
