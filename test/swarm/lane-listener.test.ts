import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_PENDING_LANES_PER_IP } from '../../src/swarm/constants.js'
import { LaneListener, type LaneConnection, type LaneListenerInit } from '../../src/swarm/lane-listener.js'
import { readFrames } from '../../src/swarm/framing.js'
import { dialLane } from '../../src/swarm/lane-offer.js'
import type { LaneStream } from '../../src/swarm/lane-stream.js'

/** A libp2p connection as the listener sees it: a peer ID and the address it came from. */
function connectionOf (peer: string, ip = '127.0.0.1', status: LaneConnection['status'] = 'open'): LaneConnection {
  return { id: `c-${peer}`, remotePeer: { toString: () => peer }, remoteAddr: multiaddr(`/ip4/${ip}/tcp/40001`), status } as unknown as LaneConnection
}

const dialOptions = (): { signal: AbortSignal, idleTimeoutMs: number } => ({ signal: AbortSignal.timeout(5_000), idleTimeoutMs: 10_000 })

/** Resolves with the bytes a raw TCP socket received before the listener closed it. */
async function closedAfter (socket: Socket, send?: Uint8Array): Promise<number> {
  let received = 0
  socket.on('data', (data: Buffer) => { received += data.byteLength })
  socket.on('error', () => {})
  if (send !== undefined) socket.write(send)
  await once(socket, 'close', { signal: AbortSignal.timeout(5_000) })
  return received
}

/**
 * A slow link between an asker and the listener, asker to holder only: the first bytes (the
 * ClientHello) arrive `helloMs` late, everything after (the asker's Finished) `restMs` later
 * still, or never.
 */
async function slowLink (port: number, helloMs: number, restMs: number | 'never'): Promise<{ server: Server, port: number, upstreamClosed: Promise<void> }> {
  let upstreamClosed: () => void = () => {}
  const closed = new Promise<void>((resolve) => { upstreamClosed = resolve })
  const server = createServer((client) => {
    const holder = connect(port, '127.0.0.1')
    holder.on('error', () => {})
    client.on('error', () => {})
    holder.on('close', () => { upstreamClosed() })
    holder.on('data', (data: Buffer) => { client.write(data) })
    holder.on('close', () => { client.destroy() })
    let first = true
    client.on('data', (data: Buffer) => {
      const late = first ? helloMs : restMs
      first = false
      if (late === 'never') return
      setTimeout(() => { if (!holder.destroyed) holder.write(data) }, late)
    })
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const address = server.address()
  return { server, port: typeof address === 'object' && address !== null ? address.port : 0, upstreamClosed: closed }
}

describe('lane listener (nothing acts for a stranger)', () => {
  const listeners: LaneListener[] = []
  afterEach(async () => {
    for (const listener of listeners.splice(0)) await listener.stop()
  })

  const lanes: Array<{ stream: LaneStream, peer: string }> = []
  afterEach(() => { lanes.length = 0 })

  async function listen (init: Partial<LaneListenerInit> = {}): Promise<{ listener: LaneListener, port: number, lanes: Array<{ stream: LaneStream, peer: string }> }> {
    const listener = new LaneListener({ host: '127.0.0.1', port: 0, admits: () => true, onLane: (stream, peer) => { lanes.push({ stream, peer }) }, ...init })
    listeners.push(listener)
    const port = await listener.start()
    return { listener, port, lanes }
  }

  it('admits a lane keyed by an open offer, bound to the peer the offer was made to', async () => {
    let received = 0
    const { listener, lanes } = await listen({
      onLane: (stream, peer) => {
        lanes.push({ stream, peer })
        stream.addEventListener('message', (evt) => { received += evt.data.byteLength })
      },
    })
    const offer = listener.offer('peer-a', connectionOf('peer-a'))
    expect(offer).toBeDefined()
    const lane = await dialLane('127.0.0.1', offer!, dialOptions())
    lane.send(Uint8Array.of(1, 2, 3))
    await expect.poll(() => lanes.length).toBe(1)
    expect(lanes[0]?.peer).toBe('peer-a')
    await expect.poll(() => received).toBe(3)
    const ended = new Promise<Error | undefined>((resolve) => { lane.addEventListener('close', (evt) => { resolve(evt.error) }, { once: true }) })
    listener.closePeer('peer-a', new Error('banned'))
    // The asker's side ends as a reset stream does: a closed lane, not a message cut short.
    expect(await ended).toMatchObject({ name: 'LaneClosedError' })
    expect(lanes[0]?.stream.status).toBe('aborted')
    expect(listener.openLanes).toBe(0)
    lane.abort(new Error('done'))
  })

  it('ends the asker\'s side as a closed lane, not the holder\'s violation, when the holder aborts it inside a message', async () => {
    const { listener, lanes } = await listen()
    const lane = await dialLane('127.0.0.1', listener.offer('peer-a', connectionOf('peer-a'))!, dialOptions())
    lane.send(Uint8Array.of(1))
    await expect.poll(() => lanes.length).toBe(1)
    const holder = lanes[0]!.stream
    const closed = new Promise<Error | undefined>((resolve) => { lane.addEventListener('close', (evt) => { resolve(evt.error) }, { once: true }) })
    readFrames(lane, { maxFrameBytes: 1024, messageTimeoutMs: 10_000, onFrame: () => {} })
    // A 100-byte message of which 10 bytes went, then the holder's timeouts or a ban close it.
    holder.send(Uint8Array.of(100, ...new Uint8Array(10)))
    // The frame reader takes the lane's bytes itself (lent, not as 'message' events): its count says they came.
    await expect.poll(() => lane.bytesIn).toBe(11)
    holder.abort(new Error('the peer did not read a chunk it asked for'))
    expect(await closed).toMatchObject({ name: 'LaneClosedError' })
  })

  it('closes a socket from an address no offer was made to at accept, before any TLS', async () => {
    const { listener, port, lanes } = await listen()
    // An offer stands, but for another address.
    listener.offer('peer-a', connectionOf('peer-a', '10.9.9.9'))
    const received = await closedAfter(connect(port, '127.0.0.1'))
    expect(received).toBe(0)
    expect(listener.refused).toBe(1)
    expect(lanes).toEqual([])
  })

  it('refuses a replayed, an expired, a wrong-address and a wrong-key identity, and a peer no longer admitted', async () => {
    let admitted = true
    const { listener, lanes } = await listen({ admits: () => admitted })
    const used = listener.offer('peer-a', connectionOf('peer-a'))!
    await dialLane('127.0.0.1', used, dialOptions())
    await expect.poll(() => lanes.length).toBe(1)
    // Replayed: the key worked once and is gone. (Another offer to this address stands, so the
    // socket gets as far as the handshake and fails there.)
    listener.offer('peer-b', connectionOf('peer-b'))
    await expect(dialLane('127.0.0.1', used, dialOptions())).rejects.toMatchObject({ code: 'SWARM_LANE_CLOSED' })

    const { listener: expiring } = await listen({ offerTtlMs: 0 })
    const expired = expiring.offer('peer-a', connectionOf('peer-a'))!
    expiring.offer('peer-b', connectionOf('peer-b'))
    await expect(dialLane('127.0.0.1', expired, dialOptions())).rejects.toMatchObject({ code: 'SWARM_LANE_CLOSED' })

    // Made to a peer at another address, used from here by a peer that holds one of its own.
    const elsewhere = listener.offer('peer-c', connectionOf('peer-c', '10.9.9.9'))!
    listener.offer('peer-d', connectionOf('peer-d'))
    await expect(dialLane('127.0.0.1', elsewhere, dialOptions())).rejects.toMatchObject({ code: 'SWARM_LANE_CLOSED' })

    const wrongKey = listener.offer('peer-e', connectionOf('peer-e'))!
    await expect(dialLane('127.0.0.1', { ...wrongKey, key: new Uint8Array(32) }, dialOptions())).rejects.toMatchObject({ code: 'SWARM_LANE_CLOSED' })
    // …and that offer is spent: the right key no longer opens it.
    await expect(dialLane('127.0.0.1', wrongKey, dialOptions())).rejects.toMatchObject({ code: 'SWARM_LANE_CLOSED' })

    const banned = listener.offer('peer-f', connectionOf('peer-f'))!
    admitted = false
    await expect(dialLane('127.0.0.1', banned, dialOptions())).rejects.toMatchObject({ code: 'SWARM_LANE_CLOSED' })
    expect(lanes.map(lane => lane.peer)).toEqual(['peer-a'])
  })

  it('hands a lane to the server its offer was asked for (a chunk or a blob stream), and refuses a blob lane with a wrong key or for a peer no longer admitted', async () => {
    let admitted = true
    const kinds: string[] = []
    const { listener, lanes } = await listen({ admits: () => admitted, onLane: (stream, peer, _connection, kind) => { lanes.push({ stream, peer }); kinds.push(`${peer}:${kind}`) } })
    await dialLane('127.0.0.1', listener.offer('peer-a', connectionOf('peer-a'), 'blob')!, dialOptions())
    await dialLane('127.0.0.1', listener.offer('peer-b', connectionOf('peer-b'))!, dialOptions())
    await expect.poll(() => kinds.length).toBe(2)
    expect(kinds.sort()).toEqual(['peer-a:blob', 'peer-b:chunk'])

    const wrongKey = listener.offer('peer-c', connectionOf('peer-c'), 'blob')!
    await expect(dialLane('127.0.0.1', { ...wrongKey, key: new Uint8Array(32) }, dialOptions())).rejects.toMatchObject({ code: 'SWARM_LANE_CLOSED' })
    const banned = listener.offer('peer-d', connectionOf('peer-d'), 'blob')!
    admitted = false
    await expect(dialLane('127.0.0.1', banned, dialOptions())).rejects.toMatchObject({ code: 'SWARM_LANE_CLOSED' })
    expect(kinds.sort()).toEqual(['peer-a:blob', 'peer-b:chunk'])
  })

  it('closes a socket that never finishes its handshake, and holds few of them at once', async () => {
    const { listener, port } = await listen({ handshakeTimeoutMs: 300 })
    listener.offer('peer-a', connectionOf('peer-a'))
    const silent = Array.from({ length: MAX_PENDING_LANES_PER_IP }, () => connect(port, '127.0.0.1'))
    await Promise.all(silent.map(async socket => await once(socket, 'connect')))
    // One more from the same address is closed at once, before the silent ones time out.
    const extra = connect(port, '127.0.0.1')
    const extraClosed = closedAfter(extra)
    expect(await extraClosed).toBe(0)
    expect(silent.every(socket => !socket.destroyed)).toBe(true)
    // The silent ones are closed by the handshake timeout, having received nothing.
    expect(await Promise.all(silent.map(async socket => await closedAfter(socket)))).toEqual(silent.map(() => 0))
    expect(listener.refused).toBe(MAX_PENDING_LANES_PER_IP + 1)
  })

  it('gives a peer that showed an open offer\'s identity as long again to finish its handshake, and closes it if it does not', async () => {
    const { listener, port, lanes } = await listen({ handshakeTimeoutMs: 1_500 })
    // Each step within the timeout, both together past it (a full link's handshake).
    const slow = await slowLink(port, 1_000, 1_000)
    const lane = await dialLane('127.0.0.1', { ...listener.offer('peer-a', connectionOf('peer-a'))!, port: slow.port }, dialOptions())
    await expect.poll(() => lanes.length, { timeout: 5_000 }).toBe(1)
    expect(lanes[0]?.peer).toBe('peer-a')
    lane.abort(new Error('done'))
    slow.server.close()

    // A good identity and then nothing: closed after the second span, no lane.
    const silent = await slowLink(port, 0, 'never')
    const refusedBefore = listener.refused
    void dialLane('127.0.0.1', { ...listener.offer('peer-b', connectionOf('peer-b'))!, port: silent.port }, dialOptions()).then(stream => { stream.abort(new Error('done')) }, () => {})
    await silent.upstreamClosed
    expect(listener.refused).toBe(refusedBefore + 1)
    expect(lanes).toHaveLength(1)
    silent.server.close()
  })

  it('closes a socket whose first bytes are not a ClientHello, without a lane', async () => {
    const { listener, port, lanes } = await listen()
    listener.offer('peer-a', connectionOf('peer-a'))
    await closedAfter(connect(port, '127.0.0.1'), new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'))
    expect(lanes).toEqual([])
  })
})
