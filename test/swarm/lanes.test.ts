import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { LaneClosedError } from '../../src/swarm/errors.js'
import { LaneListener, type LaneConnection } from '../../src/swarm/lane-listener.js'
import { dialLane } from '../../src/swarm/lane-offer.js'
import type { LaneStream } from '../../src/swarm/lane-stream.js'
import { Lanes, type LanesInit } from '../../src/swarm/lanes.js'
import { silentLogger } from '../../src/swarm/swarm-options.js'

/**
 * The asker's side of lanes (lanes.ts): which lane a chunk stream gets, when one is asked for
 * again. Real TLS lanes on loopback through the real listener; only the offer, which travels
 * over libp2p, is handed over directly.
 */

const PEER = 'peer-a'

function connectionOf (peer: string): LaneConnection {
  return { id: `c-${peer}`, remotePeer: { toString: () => peer }, remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/40001'), status: 'open' } as unknown as LaneConnection
}

describe('lanes (the asker)', () => {
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop()
  })

  /** An asker whose lanes go to a listener on loopback (or fail, while `refuse` is set). */
  async function asker (init: Partial<LanesInit> = {}): Promise<{ lanes: Lanes, served: LaneStream[], opens: () => number, readies: () => number, refuse: (on: boolean) => void }> {
    const served: LaneStream[] = []
    const listener = new LaneListener({
      host: '127.0.0.1',
      port: 0,
      admits: () => true,
      onLane: (stream) => {
        served.push(stream)
        // As the chunk server does: the asker's end ends the stream.
        stream.addEventListener('remoteCloseWrite', () => { void stream.close() }, { once: true })
      },
    })
    await listener.start()
    let opens = 0
    let readies = 0
    let refusing = false
    const lanes = new Lanes({
      log: silentLogger,
      connectionTo: () => connectionOf(PEER) as unknown as Connection,
      admits: () => true,
      onServe: () => {},
      onReady: () => { readies++ },
      openLane: async (_connection, options) => {
        opens++
        if (refusing) throw new LaneClosedError('no lane offered')
        return await dialLane('127.0.0.1', listener.offer(PEER, connectionOf(PEER))!, options)
      },
    }, { ask: true, minRateBytesPerSecond: 0, ...init })
    await lanes.start()
    stops.push(async () => {
      await lanes.stop()
      for (const stream of served) stream.abort(new Error('test over'))
      await listener.stop()
    })
    return { lanes, served, opens: () => opens, readies: () => readies, refuse: (on) => { refusing = on } }
  }

  it('forgets a lane its holder ended before a chunk stream took it, counts no failure, and gives the next chunk stream a new one', async () => {
    const { lanes, served, opens, readies } = await asker()
    // Asked for with no chunk stream waiting (a lane up after the chunk stream's wait).
    lanes.delivered(PEER, 1)
    await expect.poll(readies).toBe(1)
    await expect.poll(() => served.length).toBe(1)
    // The holder closes it, as its first-request timeout does with a lane that carried nothing.
    served[0]!.abort(new Error('a first chunk request did not arrive'))
    await expect.poll(() => lanes.pending(PEER)).toBe(false)
    expect(lanes.stats().failed).toBe(0)

    const lane = await lanes.take(PEER, AbortSignal.timeout(10_000))
    expect(lane).toBeDefined()
    expect(opens()).toBe(2)
    let received = 0
    await expect.poll(() => served.length).toBe(2)
    served[1]!.addEventListener('message', (evt) => { received += evt.data.byteLength })
    lane!.send(Uint8Array.of(1, 2, 3))
    await expect.poll(() => received).toBe(3)
  })

  it('closes a lane no chunk stream took in time, before the holder\'s first-request timeout can cross a request', async () => {
    const { lanes, served } = await asker({ readyUnusedMs: 200 })
    lanes.delivered(PEER, 1)
    await expect.poll(() => served.length).toBe(1)
    await expect.poll(() => lanes.pending(PEER)).toBe(false)
    // Closed as a finished stream is, at both ends: not a failure.
    await expect.poll(() => served[0]!.status).toBe('closed')
    expect(lanes.stats().failed).toBe(0)
  })

  it('asks again after the first retry\'s wait, not the longest', async () => {
    const { lanes, opens, refuse } = await asker({ firstRetryMs: 300, retryAfterFailureMs: 60_000 })
    refuse(true)
    lanes.delivered(PEER, 1)
    await expect.poll(() => lanes.stats().failed).toBe(1)
    // Within the wait nothing is asked; after it, the next delivery asks again.
    lanes.delivered(PEER, 1)
    expect(opens()).toBe(1)
    await expect.poll(() => { lanes.delivered(PEER, 1); return opens() }, { timeout: 5_000 }).toBe(2)
    await expect.poll(() => lanes.stats().failed).toBe(2)
    refuse(false)
    await expect.poll(() => { lanes.delivered(PEER, 1); return opens() }, { timeout: 5_000 }).toBe(3)
    expect(await lanes.take(PEER, AbortSignal.timeout(10_000))).toBeDefined()
  })
})
