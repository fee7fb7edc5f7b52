import { connect as connectTcp, createServer, type Socket } from 'node:net'
import { PING_PROTOCOL } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { pEvent } from 'p-event'
import { describe, expect, it } from 'vitest'
import type { ShoalNode } from '../../src/swarm/libp2p-node.js'
import { tcpPortOf, useBareNodes } from './bare-nodes.js'

/**
 * Connections' liveness through yamux's ping frame (muxer-pings.ts), on real libp2p nodes over
 * TCP. "Vanished" is a TCP relay between the two that stops carrying bytes either way and
 * closes nothing: a host whose cable was pulled, which no RST announces.
 */
describe('connection pings through the muxer', () => {
  const { start, servers, sockets } = useBareNodes()
  // Short periods for the test; the rule is libp2p's monitor's: every interval, a timeout between min and max.
  const pings = { intervalMs: 200, minTimeoutMs: 400, maxTimeoutMs: 1_500 }

  /** A relay to `port` whose `freeze()` stops every byte both ways and leaves the sockets open. */
  async function relayTo (port: number): Promise<{ port: number, freeze: () => void }> {
    let frozen = false
    const server = createServer((inbound) => {
      sockets.push(inbound)
      const outbound = connectTcp({ host: '127.0.0.1', port })
      sockets.push(outbound)
      const carry = (from: Socket, to: Socket): void => {
        from.on('data', (data: Buffer) => { if (!frozen) to.write(data) })
        from.on('error', () => {})
        from.on('close', () => { if (!frozen) to.destroy() })
      }
      carry(inbound, outbound)
      carry(outbound, inbound)
    })
    servers.push(server)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('the relay has no port')
    return { port: address.port, freeze: () => { frozen = true } }
  }

  /** Counts the ping streams a node accepts (libp2p's monitor opened one per ping). */
  function pingStreamsAcceptedBy (node: ShoalNode): { count: number } {
    const seen = { count: 0 }
    node.use(PING_PROTOCOL, (stream, connection, next) => { seen.count++; next(stream, connection) })
    return seen
  }

  /** Whether the node closes a connection within `ms`. */
  async function closesWithin (node: ShoalNode, ms: number): Promise<boolean> {
    try {
      await pEvent(node, 'connection:close', { timeout: ms })
      return true
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') return false
      throw err
    }
  }

  it('keeps an answering connection with no ping stream, and closes one whose peer vanished within the interval and the longest timeout', async () => {
    const a = await start({ connectionPings: pings })
    const b = await start({ connectionPings: pings })
    const streamsAtA = pingStreamsAcceptedBy(a)
    const streamsAtB = pingStreamsAcceptedBy(b)
    const relay = await relayTo(tcpPortOf(b))
    const connection = await a.dial(multiaddr(`/ip4/127.0.0.1/tcp/${relay.port}/p2p/${b.peerId.toString()}`))

    // Ten intervals of pings, each answered at both ends: nothing closes, and the round trip was measured.
    expect(await closesWithin(a, 10 * pings.intervalMs)).toBe(false)
    expect(connection.status).toBe('open')
    expect(connection.rtt).toBeGreaterThanOrEqual(0)
    expect(b.getConnections(a.peerId).map(c => c.status)).toEqual(['open'])
    expect(streamsAtA.count + streamsAtB.count).toBe(0)

    relay.freeze()
    const frozenAt = Date.now()
    const closed = pEvent(a, 'connection:close', { timeout: 20_000 })
    await closed
    const noticedMs = Date.now() - frozenAt
    // libp2p's monitor's bound: the next ping within an interval, its answer given up after at most the longest timeout.
    expect(noticedMs).toBeLessThanOrEqual(pings.intervalMs + pings.maxTimeoutMs + 500)
    expect(a.getConnections(b.peerId)).toEqual([])
    // The other end notices as well.
    if (b.getConnections(a.peerId).length > 0) await pEvent(b, 'connection:close', { timeout: pings.intervalMs + pings.maxTimeoutMs + 2_000 })
    expect(b.getConnections(a.peerId)).toEqual([])
  }, 30_000)

  it('keeps a connection whose ping was given up before its answer came (kad-dht\'s short ping timeouts on a busy machine)', async () => {
    const a = await start()
    const b = await start()
    const connection = await a.dial(b.getMultiaddrs()[0]!)
    const closed = { count: 0 }
    a.addEventListener('connection:close', () => { closed.count++ })
    // Given up at once: the ping frame is on its way and its answer comes after.
    await expect(a.services.ping.ping(b.peerId, { signal: AbortSignal.abort() })).rejects.toThrow()
    // The late answer arrives while these wait (before, yamux threw "ping not requested" or "doesn't
    // match our id" from the connection's data handler and the connection was aborted).
    for (let i = 0; i < 3; i++) expect(await a.services.ping.ping(b.peerId, { signal: AbortSignal.timeout(5_000) })).toBeGreaterThanOrEqual(0)
    expect(connection.status).toBe('open')
    expect(closed.count).toBe(0)
  })

  it('answers kad-dht\'s ping of a connected peer with the muxer\'s ping, and pings an address over a stream as before', async () => {
    const a = await start()
    const b = await start()
    const streamsAtB = pingStreamsAcceptedBy(b)
    await a.dial(b.getMultiaddrs()[0]!)
    const rtt = await a.services.ping.ping(b.peerId, { signal: AbortSignal.timeout(5_000) })
    expect(rtt).toBeGreaterThanOrEqual(0)
    expect(streamsAtB.count).toBe(0)
    await a.services.ping.ping(b.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5_000) })
    expect(streamsAtB.count).toBe(1)
  })
})
