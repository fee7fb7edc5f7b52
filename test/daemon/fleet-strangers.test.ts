import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createContentSources, createLogger, ImageAssembler } from '../../src/daemon/index.js'
import { ingestBlobBytes } from '../../src/store/index.js'
import { createPeerKey, generateSwarmKey, peerIdOfKey, type FleetQuery } from '../../src/swarm/index.js'
import { connect, patternBytes, useSwarms, type TestNode } from '../swarm/swarm-fixture.js'

/**
 * "Nothing acts for a stranger" on /shoal/fleet/1.0.0: a node holds a blob whole that no
 * bundle names (pulled through by its own client before the image was whole). A peer's
 * find-digest for it may make the node write a one-blob bundle and announce it only when the
 * operator let peers act here: the asker is one this node trusts (--trust), or the fleet is
 * closed with a swarm key (whose members may even make it pull through). A stranger in an open
 * fleet is answered from the bundles that exist. Real swarms over TCP, the daemon's sources.
 */
describe('a peer asks for a digest held whole in no bundle', () => {
  const { node } = useSwarms()
  const blob = patternBytes(256 * 1024, 21)
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
  const query: FleetQuery = { kind: 'find-digest', registry: 'registry.example.com', repository: 'team/app', reference: digest, pullThrough: false }

  /** A node answering with the daemon's sources, holding the blob whole and no bundle; `added` counts bundles written. */
  async function holder (options: { trust?: string[], swarmKey?: Uint8Array } = {}): Promise<{ node: TestNode, added: string[] }> {
    const held = await node({ trust: options.trust, swarmKey: options.swarmKey })
    const assembler = new ImageAssembler({ store: held.store })
    // As the daemon wires them: peers may make it pull through in a keyed fleet.
    const sources = createContentSources({ store: held.store, swarm: held.swarm, pullThroughForPeers: options.swarmKey !== undefined, assembler, logger: createLogger('warn') })
    held.swarm.serveFleet(sources.respond)
    await ingestBlobBytes(held.store, blob, { sha256: digest.slice('sha256:'.length) })
    const added: string[] = []
    held.store.on('bundle:added', ({ id }) => { added.push(id) })
    return { node: held, added }
  }

  it('in an open fleet, answers a stranger from existing bundles only: nothing is written or announced', async () => {
    const gateway = await holder()
    const stranger = await node({ trust: [gateway.node.swarm.peerId] })
    await connect(stranger, gateway.node)

    const result = await stranger.swarm.askFleet(query, { signal: AbortSignal.timeout(10_000) })
    expect(result.found).toBeUndefined()
    expect(result.misses[0]?.reason).toMatch(/no bundle/)
    expect(gateway.added).toEqual([])
    expect(await gateway.node.store.bundleIds()).toEqual([])
  })

  it('makes the one-blob bundle for a peer it trusts, and for any peer in a fleet closed with a swarm key', async () => {
    for (const closed of [false, true]) {
      const edgeKey = await createPeerKey()
      const swarmKey = closed ? generateSwarmKey() : undefined
      const gateway = await holder(closed ? { swarmKey } : { trust: [peerIdOfKey(edgeKey)] })
      const edge = await node({ privateKey: edgeKey, trust: [gateway.node.swarm.peerId], swarmKey })
      await connect(edge, gateway.node)

      const result = await edge.swarm.askFleet(query, { signal: AbortSignal.timeout(10_000) })
      expect(result.found?.status, JSON.stringify(result.misses)).toBe('found')
      expect(gateway.added).toHaveLength(1)
    }
  })
})
