import type { MultiaddrConnection, StreamMuxer, StreamMuxerFactory } from '@libp2p/interface'

/**
 * yamux's window updates once a stream has taken WINDOW_UPDATE_MIN_BYTES, not after every
 * data frame.
 *
 * @chainsafe/libp2p-yamux (8.x, stream.js) answers every data frame a stream receives with a
 * window update (`sendWindowUpdate` in `handleData`): on libp2p's control streams, where a
 * frame is one have-list update, request or status batch of tens of bytes, that is one more
 * frame, one noise message, one encryption and one socket write back per message, and as much
 * again at the sender to decrypt and dispatch. go-yamux waits for half the window; here a
 * stream's update waits until it has taken 64 KiB since its last one. The chunk server's pieces
 * (at least CHUNK_PIECE_BYTES, 256 KiB) are still credited the moment each arrives, so the upload
 * pace and the reader budget, which read the holder's send window, see what they saw; a
 * stream's small frames leave at most 64 KiB uncredited, against a 16 MiB window
 * (YAMUX_WINDOW_BYTES). A sender is never kept waiting: it only stops when its whole window is
 * used, and then far more than 64 KiB is due. Updates that carry a flag (a stream's ACK) and
 * those of a paused stream go as before.
 *
 * The muxer's streams are reached through its `_newStream` (every stream, inbound or outbound,
 * is made there), and a stream's `sendWindowUpdate` is looked up on the instance at each call.
 * A muxer or stream that does not look like that version's is left alone.
 */

/** Bytes a stream takes before it credits them back (unless a frame alone is this large). */
export const WINDOW_UPDATE_MIN_BYTES = 64 * 1024

/** yamux's StreamState (stream.js): the states whose update carries a flag, and pausing. */
const STATE_INIT = 0
const STATE_SYN_RECEIVED = 2
const STATE_PAUSED = 5

/** What this relies on of @chainsafe/libp2p-yamux's YamuxStream. */
interface YamuxStreamInternals {
  state: number
  recvWindow: number
  recvWindowCapacity: number
  sendWindowUpdate: () => void
}

interface YamuxMuxerInternals {
  _newStream: (...args: unknown[]) => unknown
}

export function withFewerWindowUpdates<Components> (factory: (components: Components) => StreamMuxerFactory, minBytes: number = WINDOW_UPDATE_MIN_BYTES): (components: Components) => StreamMuxerFactory {
  return (components) => {
    const inner = factory(components)
    // The wrapper inherits the protocol name and everything else from yamux's factory.
    const wrapped = Object.create(inner) as StreamMuxerFactory
    wrapped.createStreamMuxer = (maConn: MultiaddrConnection): StreamMuxer => {
      const muxer = inner.createStreamMuxer(maConn)
      patchMuxer(muxer, minBytes)
      return muxer
    }
    return wrapped
  }
}

function patchMuxer (muxer: StreamMuxer, minBytes: number): void {
  const internals = muxer as unknown as Partial<YamuxMuxerInternals>
  const newStream = internals._newStream
  if (typeof newStream !== 'function') return
  internals._newStream = function (this: unknown, ...args: unknown[]): unknown {
    const stream = newStream.apply(this, args)
    patchStream(stream, minBytes)
    return stream
  }
}

function patchStream (candidate: unknown, minBytes: number): void {
  const stream = candidate as Partial<YamuxStreamInternals>
  const sendWindowUpdate = stream.sendWindowUpdate
  if (typeof sendWindowUpdate !== 'function' || typeof stream.state !== 'number' ||
    typeof stream.recvWindow !== 'number' || typeof stream.recvWindowCapacity !== 'number') return
  const internals = stream as YamuxStreamInternals
  internals.sendWindowUpdate = function (this: YamuxStreamInternals): void {
    const state = internals.state
    const flagged = state === STATE_INIT || state === STATE_SYN_RECEIVED
    if (!flagged && state !== STATE_PAUSED && internals.recvWindow - internals.recvWindowCapacity < minBytes) return
    sendWindowUpdate.call(internals)
  }
}
