import { Socket } from 'node:net'
import type { MessageStream } from '@libp2p/interface'
import type { SendResult } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * The one place that knows @libp2p/tcp's MultiaddrConnection from the inside (11.x,
 * socket-to-conn.js): its socket is the `socket` field, every socket read enters the
 * connection through `onData(buf)`, and everything the connection sends leaves through
 * `sendData(list)`, which writes the list's pieces to the socket one by one and stops after
 * the first write the socket answers with `false` (the rest stays queued in the connection,
 * to be handed to `sendData` again on 'drain'). Both are looked up on the instance at each
 * call, so they can be replaced per connection. libp2p's TCP transport exposes no sockets:
 * socket-batching.ts and the swarm key's layer (psk-protector.ts) reach them through here.
 */

/** The TCP socket under a connection from @libp2p/tcp, if it is one. */
export function tcpSocketOf (connection: MessageStream): Socket | undefined {
  const socket = (connection as { socket?: unknown }).socket
  return socket instanceof Socket ? socket : undefined
}

/** Observers of each socket read's size, in the order the reads come, whichever way the socket reads (below). */
const readObservers = new WeakMap<Socket, Array<(bytes: number) => void>>()

/** Calls `observer` with the size of each read of the socket, after the connection has the bytes. */
export function observeReads (socket: Socket, observer: (bytes: number) => void): void {
  let observers = readObservers.get(socket)
  if (observers === undefined) {
    const list: Array<(bytes: number) => void> = []
    readObservers.set(socket, list)
    socket.on('data', (data: Buffer) => { for (const each of list) each(data.length) })
    observers = list
  }
  observers.push(observer)
}

/** What a transform maps each piece of bytes to, in order; a stateful cipher fits. */
export type PieceTransform = (piece: Uint8Array) => Uint8Array

/** @libp2p/utils' AbstractMessageStream internals that a TCP connection's boundary is made of. */
interface ConnectionBoundary {
  onData: (data: Uint8Array | Uint8ArrayList) => void
  sendData: (data: Uint8ArrayList) => SendResult
  readBuffer: Uint8ArrayList
  writeBuffer: Uint8ArrayList
}

/** A TCP connection's boundary, found before any byte crosses it, to be transformed later. */
export interface TcpBoundary {
  /**
   * Transforms the bytes of the connection where they cross its socket: each socket read on
   * its way in (`receive`, once per read, before the connection buffers or dispatches it),
   * each piece written on its way out (`send`, exactly the pieces the socket takes, so a
   * stateful cipher advances only over bytes that reached the socket). The connection stays
   * the one libp2p's upgrader, noise and the Connection hold: no second message stream, send
   * queue or event hop. Bytes already read but not yet dispatched (a handshake's read may leave
   * some) are transformed at once; the connection must have nothing left to send, since queued
   * bytes were meant to leave untransformed.
   *
   * `receive` must return new bytes, never a view of its input (a cipher's output is new):
   * the socket then reads into one buffer of its own, reused for every read (readIntoOneBuffer),
   * so that the transform's output is the only buffer each read costs, as an untransformed
   * connection's read is.
   */
  transform: (transforms: { receive: PieceTransform, send: PieceTransform }) => void
}

/** The boundary of a connection from @libp2p/tcp, or undefined for any other connection. */
export function tcpBoundaryOf (connection: MessageStream): TcpBoundary | undefined {
  const socket = tcpSocketOf(connection)
  const boundary = connection as unknown as Partial<ConnectionBoundary>
  if (socket === undefined || typeof boundary.onData !== 'function' || typeof boundary.sendData !== 'function') return undefined
  return { transform: (transforms) => { transformBoundary(connection as unknown as ConnectionBoundary, socket, transforms) } }
}

function transformBoundary (boundary: ConnectionBoundary, socket: Socket, { receive, send }: { receive: PieceTransform, send: PieceTransform }): void {
  if (boundary.writeBuffer.byteLength > 0) throw new Error('the connection still has bytes queued to send untransformed')
  if (boundary.readBuffer.byteLength > 0) {
    const pending = boundary.readBuffer.subarray()
    boundary.readBuffer.consume(pending.byteLength)
    boundary.readBuffer.append(receive(pending))
  }
  const deliver = boundary.onData.bind(boundary)
  boundary.onData = (data) => {
    if (data.byteLength === 0) return
    if (data instanceof Uint8Array) {
      deliver(receive(data))
      return
    }
    for (const piece of data) deliver(receive(piece))
  }
  readIntoOneBuffer(socket, (bytes) => { boundary.onData(bytes) })
  boundary.sendData = (data) => {
    // @libp2p/tcp's own sendData, with each piece transformed as it is written.
    let sentBytes = 0
    let canSendMore = true
    for (const piece of data) {
      sentBytes += piece.byteLength
      canSendMore = socket.write(send(piece))
      if (!canSendMore) break
    }
    return { sentBytes, canSendMore }
  }
}

/** Node reads a socket 64 KiB at a time (libuv's suggested size); the one buffer is as large. */
const READ_BUFFER_BYTES = 64 * 1024

/** Node's net.Socket internals for reading into a buffer of one's own (Node 20, lib/net.js). */
interface UserBufferSocket {
  _handle?: { useUserBuffer?: (buffer: Uint8Array) => void } | null
}

/**
 * Makes the socket read into one buffer of ours, reused for every read, and hand each read to
 * `onRead` instead of emitting 'data' (so the TCP connection's own 'data' listener goes quiet;
 * `onRead` must consume the bytes before it returns), then to the read observers. This is net.Socket's `onread` option
 * (https://nodejs.org/api/net.html#socketconnectoptions-connectlistener), which @libp2p/tcp
 * does not pass; here it is set on a socket already reading, through the same internals the
 * option sets: the `kBuffer`/`kBufferCb` fields and the handle's `useUserBuffer`. Pause and
 * resume keep working (Node's socket checks `kBuffer` for them), as do 'end' and 'close'.
 * Nothing changes if those internals are not there or the socket holds unread data: then it
 * returns false and the socket still emits 'data'.
 */
export function readIntoOneBuffer (socket: Socket, onRead: (bytes: Uint8Array) => void): boolean {
  const fields = Object.getOwnPropertySymbols(socket)
  const kBuffer = fields.find(field => field.description === 'kBuffer')
  const kBufferCb = fields.find(field => field.description === 'kBufferCb')
  const handle = (socket as unknown as UserBufferSocket)._handle
  const internals = socket as unknown as Record<symbol, unknown>
  if (kBuffer === undefined || kBufferCb === undefined || internals[kBuffer] !== null) return false
  if (handle == null || typeof handle.useUserBuffer !== 'function' || socket.readableLength > 0) return false
  const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES)
  internals[kBuffer] = buffer
  internals[kBufferCb] = (bytesRead: number) => {
    onRead(buffer.subarray(0, bytesRead))
    for (const each of readObservers.get(socket) ?? []) each(bytesRead)
  }
  handle.useUserBuffer(buffer)
  return true
}
