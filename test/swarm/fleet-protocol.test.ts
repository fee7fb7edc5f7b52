import { createHash } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { openStore } from '../../src/store/index.js'
import { createPeerKey, createSwarm, peerIdOfKey, type FleetQuery, type FleetResponder } from '../../src/swarm/index.js'
import { connect, nextEvent, useSwarms } from './swarm-fixture.js'

const digestOf = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
const BUNDLE = 'ab'.repeat(32)
const query = (kind: FleetQuery['kind'], pullThrough = false): FleetQuery => ({
  kind, registry: 'registry.example.com', repository: 'team/app', reference: kind === 'find-digest' ? digestOf(Buffer.from('layer')) : '1.0', pullThrough,
})

/** /shoal/fleet/1.0.0 between real swarms over TCP: who is asked, and what is believed. */
describe('the fleet lookup', () => {
  const { node } = useSwarms()

  it('asks only the peers it trusts, and takes a bundle from the first that holds the digest', async () => {
    const trusted = await node()
    const stranger = await node()
    const asker = await node({ trust: [trusted.swarm.peerId] })
    const asked: string[] = []
    const answering = (who: string): FleetResponder => async (q, from) => {
      asked.push(`${who}:${q.kind}:${from === asker.swarm.peerId ? 'asker' : from}`)
      return { status: 'found', bundleId: BUNDLE }
    }
    trusted.swarm.serveFleet(answering('trusted'))
    stranger.swarm.serveFleet(answering('stranger'))
    await connect(asker, trusted)
    await connect(asker, stranger)

    const result = await asker.swarm.askFleet(query('find-digest'), { signal: AbortSignal.timeout(10_000) })
    expect(result.found).toEqual({ status: 'found', bundleId: BUNDLE })
    expect(result.peer).toBe(trusted.swarm.peerId)
    // A peer that is not trusted can neither answer for a digest nor be made to pull through.
    expect(asked).toEqual(['trusted:find-digest:asker'])
  })

  it('asks for a pull-through only when no trusted peer holds it, and says who was asked when none can', async () => {
    const gateway = await node()
    const asker = await node({ trust: [gateway.swarm.peerId] })
    const seen: boolean[] = []
    gateway.swarm.serveFleet(async (q) => {
      seen.push(q.pullThrough)
      return { status: 'not-found', reason: q.pullThrough ? 'the upstream has no such thing' : 'not held here' }
    })
    await connect(asker, gateway)

    const result = await asker.swarm.askFleet(query('find-digest', true), { signal: AbortSignal.timeout(10_000) })
    expect(result.found).toBeUndefined()
    // First a read-only lookup, then the pull-through, each answered with its reason.
    expect(seen).toEqual([false, true])
    expect(result.misses).toEqual([
      { peer: gateway.swarm.peerId, reason: 'not-found: not held here' },
      { peer: gateway.swarm.peerId, reason: 'not-found: the upstream has no such thing' },
    ])
  })

  it('says that it trusts nobody, and what to do, when started without --trust beside its gateway', async () => {
    // An edge given the gateway's address (--bootstrap) but not its key (--trust): connected to
    // it, yet every tag and blob was a miss "no trusted peer is connected", which sent operators
    // to look at the network.
    const gateway = await node()
    gateway.swarm.serveFleet(async () => ({ status: 'found', bundleId: BUNDLE }))
    const edge = await node()
    await connect(edge, gateway)
    for (const asked of [
      (await edge.swarm.askFleet(query('resolve-tag'), { signal: AbortSignal.timeout(10_000) })).misses,
      (await edge.swarm.streamFleetBlob({ registry: 'registry.example.com', repository: 'team/app', digest: digestOf(Buffer.from('layer')) }, { signal: AbortSignal.timeout(10_000) })).misses,
    ]) {
      expect(asked).toHaveLength(1)
      expect(asked[0]?.reason).toMatch(/trusts no peer.*--trust/)
    }
  })

  it('carries the bundle a tag\'s ref names with its answer, and still resolves a tag from a peer that names none', async () => {
    const manifest = Buffer.from('{"schemaVersion":2}')
    const answer = { status: 'resolved' as const, digest: digestOf(manifest), mediaType: 'application/vnd.oci.image.manifest.v1+json', manifest }
    const named = await node()
    const older = await node()
    named.swarm.serveFleet(async () => ({ ...answer, bundleId: BUNDLE }))
    // As a peer from before the field answers: no bundle ID on the wire.
    older.swarm.serveFleet(async () => answer)
    const asker = await node({ trust: [named.swarm.peerId] })
    const olderAsker = await node({ trust: [older.swarm.peerId] })
    await connect(asker, named)
    await connect(olderAsker, older)

    expect((await asker.swarm.askFleet(query('resolve-tag'), { signal: AbortSignal.timeout(10_000) })).found).toMatchObject({ status: 'resolved', digest: answer.digest, bundleId: BUNDLE })
    const found = (await olderAsker.swarm.askFleet(query('resolve-tag'), { signal: AbortSignal.timeout(10_000) })).found
    expect(found).toMatchObject({ status: 'resolved', digest: answer.digest })
    expect(found).not.toHaveProperty('bundleId')
  })

  it('bans a trusted peer whose manifest for a tag does not hash to the digest it named', async () => {
    const liar = await node()
    const asker = await node({ trust: [liar.swarm.peerId] })
    liar.swarm.serveFleet(async () => ({ status: 'resolved', digest: digestOf(Buffer.from('{"the":"real one"}')), mediaType: 'application/vnd.oci.image.manifest.v1+json', manifest: Buffer.from('{"a":"forgery"}') }))
    await connect(asker, liar)

    const banned = nextEvent(asker.swarm, 'peer:banned', e => e.peer === liar.swarm.peerId)
    const result = await asker.swarm.askFleet(query('resolve-tag'), { signal: AbortSignal.timeout(10_000) })
    expect(result.found).toBeUndefined()
    expect(result.misses[0]?.reason).toMatch(/does not hash to/)
    expect((await banned).reason).toMatch(/does not hash to/)
  })
})

describe('the fleet lookup with no trusted peer connected', () => {
  const { node, tempDir } = useSwarms()

  it('dials the trusted bootstrap peers again before it answers that nobody holds the digest', async () => {
    // The gateway is down when the edge starts (its bootstrap dial fails) and comes up later
    // on the same address: the edge must find it when asked, not answer 404 for good.
    const port = await freePort()
    const gatewayKey = await createPeerKey()
    const gatewayId = peerIdOfKey(gatewayKey)
    const edge = await node({ trust: [gatewayId], bootstrap: [`/ip4/127.0.0.1/tcp/${port}/p2p/${gatewayId}`] })

    const store = await openStore({ dir: await tempDir() })
    const gateway = createSwarm({ store }, { privateKey: gatewayKey, listen: [`/ip4/127.0.0.1/tcp/${port}`], mdns: false, gateway: true })
    gateway.serveFleet(async () => ({ status: 'found', bundleId: BUNDLE }))
    await gateway.start()
    try {
      const result = await edge.swarm.askFleet(query('find-digest'), { signal: AbortSignal.timeout(10_000) })
      expect(result.misses).toEqual([])
      expect(result.peer).toBe(gatewayId)
    } finally {
      await gateway.stop()
      await store.close()
    }
  })
})

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  return port
}
