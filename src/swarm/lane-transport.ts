import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import type { OnReadOpts } from 'node:net'
import type { ReadTicker } from './socket-batching.js'

/** A full TLS record as it crosses the wire: 16 KiB of data, the 5-byte header, the content type and the 16-byte tag. */
const TLS_RECORD_WIRE_BYTES = 16 * 1024 + 22
/** node's TLS hands over at most one record's cleartext (16 KiB) per callback; the one buffer holds that. */
const CLEARTEXT_BUFFER_BYTES = 16 * 1024

/** Takes each piece of a lane's cleartext; the bytes are lent for the call only. */
export type LentBytesReader = (bytes: Uint8Array) => void

/**
 * Where the reader wants the next piece of cleartext: memory of its own, which node fills with
 * at most its length of the stream's next bytes (a longer record is split across reads), or
 * undefined for the lane's one buffer. Asked after each piece, so the answer can follow the
 * reader's state: the reader is then called with a view of that memory.
 */
export type ReadPlace = () => Uint8Array | undefined

/** The asker's end of a lane as dialed: its TLS socket and where its cleartext goes. */
export interface AskerTls {
  tls: TLSSocket
  /**
   * Hands every piece of cleartext from now on to `reader`, lent: the memory is reused for the
   * next piece once the call returns. Pieces that came before a reader was set (a holder that
   * sent at once) were kept as copies and come first. `place`, if given, says where each next
   * piece is to be read.
   */
  readWith: (reader: LentBytesReader, place?: ReadPlace) => void
}

/** tls.connect's options as node reads them; `allowHalfOpen` and `onread` are missing from its types. */
export type AskerTlsOptions = ConnectionOptions & { host: string, port: number, allowHalfOpen?: boolean }

/**
 * The asker's TLS socket, reading its TCP socket's own handle and its cleartext into one buffer
 * of ours.
 *
 * node's TLS then reads the TCP socket in C++ (TLSWrap on the TCP handle): a TCP read that ends
 * inside a record never reaches JavaScript, and each whole record's cleartext is copied into the
 * one buffer and handed to `readWith`'s reader (net.Socket's `onread`, which tls.connect takes
 * only when it makes the socket itself). Before, TLS read the TCP socket through a Duplex
 * (node's JSStreamSocket) so that the read tick could stop the TCP socket: every TCP read went
 * into JavaScript and back (~11% of a bed edge's main thread), and every record then came up
 * through `Readable.push`, the 'data' event and a fresh buffer (~9% with the frame reader's
 * share; docs/architecture.md, "An edge's receive path, taken apart again").
 *
 * The read tick (socket-batching.ts `addRecordReader`) stops the TLS socket at the end of an
 * event-loop turn whose records came to less than a full read; TLSWrap's readStop reaches the
 * TCP handle. A slow lane waits until about one record has arrived (the tick's read target),
 * up to MAX_WAIT_TICKS.
 *
 * The buffer node reads into is asked for after each piece (`onread.buffer` as a function, which
 * tls.connect honours on Node 20: TLSWrap copies each SSL_read into whatever it was last given),
 * so a reader that knows where the next bytes belong (the rest of a chunk body, framing.ts) takes
 * them there with no copy of its own; else they come into the one buffer.
 */
export function connectAskerTls (options: AskerTlsOptions, ticker?: ReadTicker): AskerTls {
  let reader: LentBytesReader | undefined
  /** Cleartext that came before a reader, copied. */
  let early: Uint8Array[] | undefined = []
  let place: ReadPlace | undefined
  let records: ((length: number) => void) | undefined
  const buffer = Buffer.allocUnsafeSlow(CLEARTEXT_BUFFER_BYTES)
  const withOnread: AskerTlsOptions & { onread: OnReadOpts } = {
    ...options,
    onread: {
      buffer: () => {
        const placed = place?.()
        return placed !== undefined && placed.byteLength > 0 ? placed : buffer
      },
      // `into` is the memory last returned above, which node read into.
      callback: (length: number, into: Uint8Array) => {
        const bytes = into.subarray(0, length)
        if (reader !== undefined) reader(bytes)
        else early?.push(Uint8Array.prototype.slice.call(bytes))
        records?.(length)
        return true
      },
    },
  }
  const tls = tlsConnect(withOnread)
  // tls.connect passes no noDelay to the socket it makes: requests and credits are small and must not wait for an ack.
  tls.prependOnceListener('connect', () => { tls.setNoDelay(true) })
  if (ticker !== undefined) records = ticker.addRecordReader(tls, { readTargetBytes: TLS_RECORD_WIRE_BYTES })
  return {
    tls,
    readWith: (next, where) => {
      reader = next
      place = where
      const before = early ?? []
      early = undefined
      for (const bytes of before) next(bytes)
    },
  }
}
