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
 * Where the reader wants the next bytes of cleartext: memory of its own, which node fills from
 * its start with at most its length of the stream's next bytes (a record past its end is split
 * there), or undefined for the lane's one buffer. Asked again once the last answer is full (or
 * was undefined), so the answer can follow the reader's state. What was read there comes to the
 * reader as a view of that memory, in order, once it is full, at the end of the event-loop turn,
 * or before the stream's end: until then the memory must stay where the reader's next bytes go.
 */
export type ReadPlace = () => Uint8Array | undefined

/** The asker's end of a lane as dialed: its TLS socket and where its cleartext goes. */
export interface AskerTls {
  tls: TLSSocket
  /**
   * Hands every piece of cleartext from now on to `reader`, lent: the memory is reused for the
   * next piece once the call returns. Pieces that came before a reader was set (a holder that
   * sent at once) were kept as copies and come first. `place`, if given, says where the next
   * bytes are to be read (see ReadPlace); `turnEnded`, if given, runs at the end of each
   * event-loop turn that brought cleartext, after every byte of the turn was handed to `reader`.
   */
  readWith: (reader: LentBytesReader, place?: ReadPlace, turnEnded?: () => void) => void
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
 * them there with no copy of its own; else they come into the one buffer. Records read into the
 * reader's memory are only counted here and handed over together, once that memory is full or at
 * the end of the turn (or before the next byte read elsewhere): each record had gone through the
 * lane, its credit count and the frame reader on its own, ~32,000 times per 512 MiB
 * (docs/architecture.md, "The lane asker's records handed over per turn").
 */
export function connectAskerTls (options: AskerTlsOptions, ticker?: ReadTicker): AskerTls {
  let reader: LentBytesReader | undefined
  /** Cleartext that came before a reader, copied. */
  let early: Uint8Array[] | undefined = []
  let place: ReadPlace | undefined
  let turnEnded: (() => void) | undefined
  const buffer = Buffer.allocUnsafeSlow(CLEARTEXT_BUFFER_BYTES)
  /**
   * The reader's memory that node reads into (`place`'s answer, kept until it is full), how much
   * of it was handed over and how much holds bytes. Only `buffer` below gives it out, so the
   * memory node was last given is this region's rest whenever there is one.
   */
  let region: Uint8Array | undefined
  let handed = 0
  let filled = 0
  const handOver = (): void => {
    if (region === undefined || filled === handed) return
    const bytes = region.subarray(handed, filled)
    handed = filled
    if (filled === region.byteLength) region = undefined
    reader?.(bytes)
  }
  let turnDue = false
  const endTurn = (): void => {
    turnDue = false
    handOver()
    turnEnded?.()
  }
  let records: ((length: number) => void) | undefined
  const withOnread: AskerTlsOptions & { onread: OnReadOpts } = {
    ...options,
    onread: {
      buffer: () => {
        if (region === undefined) {
          const placed = place?.()
          if (placed === undefined || placed.byteLength === 0) return buffer
          region = placed
          handed = 0
          filled = 0
        }
        return filled === 0 ? region : region.subarray(filled)
      },
      // `into` is the memory last returned above, which node read into.
      callback: (length: number, into: Uint8Array) => {
        if (records !== undefined) records(length)
        else if (!turnDue) {
          turnDue = true
          setImmediate(endTurn)
        }
        if (region !== undefined && into !== buffer) {
          filled += length
          if (filled === region.byteLength) handOver()
          return true
        }
        const bytes = into.subarray(0, length)
        if (reader !== undefined) reader(bytes)
        else early?.push(Uint8Array.prototype.slice.call(bytes))
        return true
      },
    },
  }
  const tls = tlsConnect(withOnread)
  // tls.connect passes no noDelay to the socket it makes: requests and credits are small and must not wait for an ack.
  tls.prependOnceListener('connect', () => { tls.setNoDelay(true) })
  // Every byte read comes before the end: a frame is never judged cut short with its last bytes still here.
  tls.prependListener('end', handOver)
  if (ticker !== undefined) records = ticker.addRecordReader(tls, { readTargetBytes: TLS_RECORD_WIRE_BYTES, turnEnded: endTurn })
  return {
    tls,
    readWith: (next, where, onTurnEnd) => {
      reader = next
      place = where
      turnEnded = onTurnEnd
      const before = early ?? []
      early = undefined
      for (const bytes of before) next(bytes)
    },
  }
}
