import type { Socket } from 'node:net'
import { Duplex } from 'node:stream'
import type { ReadTicker } from './socket-batching.js'
import { readIntoOneBuffer } from './tcp-boundary.js'

/** A full TLS record as it crosses the wire: 16 KiB of data, the 5-byte header, the content type and the 16-byte tag. */
const TLS_RECORD_WIRE_BYTES = 16 * 1024 + 22

/**
 * The asker's TCP socket under its lane's TLS, read on the shared read tick (socket-batching.ts).
 *
 * Given a socket with its own handle, node's TLS takes that handle over and reads it in C++:
 * JavaScript sees only whole 16 KiB records, so the tick, which stops a socket after a read
 * that emptied the kernel's buffer, never saw the reads that ended inside a record. On the
 * 8-host bed a lane carries ~0.4 MB/s (six holders share an edge's 20 Mbit/s), a record every
 * ~40 ms, and most reads ended inside one: with the tick on the TLS socket an edge still read
 * 12-14 thousand times a pull against libp2p's 7-8 thousand. Through this Duplex TLS reads
 * the TCP socket's bytes (node's JSStreamSocket), so the tick stops the TCP socket itself, as
 * it stops libp2p's.
 *
 * The TCP socket reads into one buffer of ours, reused for every read (readIntoOneBuffer), and
 * each read is handed to TLS as a 'data' event of the Duplex, outside its Readable queue: node's
 * JSStreamSocket passes each 'data' chunk at once to its handle's `readBuffer`, which copies it
 * into the TLS record layer's own input buffer before it returns (JSStream::ReadBuffer), so the
 * buffer is free again when the event returns. With a fresh 64 KiB buffer per read, queued
 * through the Duplex, a fast lane's receiver spent ~1.8 CPU-s per GiB more than TLS on the
 * socket's own handle, most of it off the main thread (docs/architecture.md, "A data lane").
 * TLS's flow control reaches the TCP socket as the Duplex's 'pause' and 'resume' events
 * (JSStreamSocket's readStop and readStart).
 *
 * A slow lane waits on the tick until a read brings about one TLS record (the tick's read
 * target): TLS hands JavaScript nothing before a record is whole, and every read costs this
 * hop into JavaScript and back into TLS. On the 8-host bed a lane's reads came one tick apart
 * at ~0.4 MB/s, ~8 KB each: 6,000 reads an edge for 4,200 records (docs/architecture.md,
 * "The fleet bed").
 */
export function tickedTransport (tcp: Socket, ticker: ReadTicker): Duplex {
  const transport = new Duplex({
    allowHalfOpen: true,
    read () { tcp.resume() },
    write (chunk: Buffer, encoding, callback) { tcp.write(chunk, encoding, callback) },
    final (callback) { tcp.end(callback) },
    destroy (err, callback) {
      tcp.destroy(err ?? undefined)
      callback(err)
    },
  })
  const oneBuffer = readIntoOneBuffer(tcp, (bytes) => { transport.emit('data', bytes) })
  if (oneBuffer) {
    transport.on('pause', () => { tcp.pause() })
    transport.on('resume', () => { tcp.resume() })
  } else {
    tcp.on('data', (data: Buffer) => { if (!transport.push(data)) tcp.pause() })
  }
  tcp.on('end', () => { transport.push(null) })
  tcp.on('error', (err) => { transport.destroy(err) })
  tcp.on('close', () => { transport.destroy() })
  // The tick needs the socket's handle, which a socket has once it connected.
  tcp.once('connect', () => { ticker.add(tcp, { readTargetBytes: TLS_RECORD_WIRE_BYTES }) })
  return transport
}
