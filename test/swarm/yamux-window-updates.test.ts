import { multiaddr } from '@multiformats/multiaddr'
import type { Stream } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { YAMUX_WINDOW_BYTES } from '../../src/swarm/constants.js'
import { WINDOW_UPDATE_MIN_BYTES } from '../../src/swarm/yamux-window-updates.js'
import { tcpPortOf, useBareNodes } from './bare-nodes.js'

/** yamux's send window, which the upload pace and the reader budget read (not in libp2p's Stream type). */
function windowOf (stream: Stream): number {
  return (stream as unknown as { sendWindowCapacity: number }).sendWindowCapacity
}

/**
 * A stream credits what it took once 64 KiB are due, not after every data frame
 * (yamux-window-updates.ts): small frames stay uncredited below that, a large one is credited
 * as it arrives, and nothing waits on it.
 */
describe('yamux window updates', () => {
  const { start } = useBareNodes()

  /**
   * A stream to a node that answers one byte each time it has received `total` bytes more,
   * on a later turn than the data, so a window update it sends for them is on the wire first.
   */
  async function countedStream (): Promise<{ stream: Stream, send: (sizes: number[]) => Promise<void> }> {
    const listener = await start()
    const dialer = await start()
    let expected = 0
    let received = 0
    await listener.handle('/test/credit/1', (stream) => {
      stream.addEventListener('message', (evt) => {
        received += evt.data.byteLength
        if (received === expected) setImmediate(() => { stream.send(new Uint8Array([1])) })
      })
    })
    const stream = await dialer.dialProtocol(multiaddr(`/ip4/127.0.0.1/tcp/${tcpPortOf(listener)}/p2p/${listener.peerId.toString()}`), '/test/credit/1', { signal: AbortSignal.timeout(10_000) })
    const send = async (sizes: number[]): Promise<void> => {
      const answered = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error('no answer')) }, 10_000)
        stream.addEventListener('message', () => { clearTimeout(timer); resolve() }, { once: true })
      })
      for (const size of sizes) expected += size
      for (const size of sizes) {
        // One frame each: nothing else is queued, so every send leaves on its own.
        if (!stream.send(new Uint8Array(size))) await stream.onDrain({ signal: AbortSignal.timeout(10_000) })
        await new Promise(resolve => setImmediate(resolve))
      }
      await answered
    }
    return { stream, send }
  }

  it('leaves small frames uncredited until 64 KiB are due, then credits them all', async () => {
    const { stream, send } = await countedStream()
    await send([100])
    const before = windowOf(stream)
    await send(Array.from({ length: 50 }, () => 200))
    expect(windowOf(stream)).toBe(before - 50 * 200)
    // Past the threshold in small frames: one update brings the window back whole.
    const due = YAMUX_WINDOW_BYTES - windowOf(stream)
    const frames = Math.ceil((WINDOW_UPDATE_MIN_BYTES - due) / 1000)
    await send(Array.from({ length: frames }, () => 1000))
    expect(windowOf(stream)).toBe(YAMUX_WINDOW_BYTES)
  })

  it('credits a frame of 64 KiB or more as it arrives', async () => {
    const { stream, send } = await countedStream()
    await send([100, 300])
    expect(windowOf(stream)).toBeLessThan(YAMUX_WINDOW_BYTES)
    await send([256 * 1024])
    expect(windowOf(stream)).toBe(YAMUX_WINDOW_BYTES)
  })
})
