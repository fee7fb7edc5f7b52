import { createHash } from 'node:crypto'
import { describe, expect, it, vi } from 'vitest'
import { bundleCid } from '../../src/swarm/content-id.js'
import { ProviderRecords, type ProviderRecordsInit } from '../../src/swarm/providers.js'
import { useBareNodes } from './bare-nodes.js'
import type { ShoalNode } from '../../src/swarm/libp2p-node.js'
import type { PeerId } from '@libp2p/interface'

const X = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
const Y = '0c5b1e3a7d2f4e6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a'

/** kad-dht (16.x) as the tests reach into it: its own provider store. */
const providerStore = (node: ShoalNode): { getProviders: (cid: ReturnType<typeof bundleCid>) => Promise<PeerId[]> } =>
  (node.services.dht as unknown as { providers: { getProviders: (cid: ReturnType<typeof bundleCid>) => Promise<PeerId[]> } }).providers

const routingTableSize = (node: ShoalNode): number => (node.services.dht as unknown as { routingTable: { size: number } }).routingTable.size

/** kad-dht's distance: the XOR of the SHA2-256 of a key's bytes and of a peer ID's multihash. */
function distance (peer: PeerId, id: string): Buffer {
  const sha = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest()
  const a = sha(peer.toMultihash().bytes)
  const b = sha(bundleCid(id).multihash.bytes)
  return Buffer.from(a.map((byte, i) => byte ^ (b[i] ?? 0)))
}

/** A bundle ID whose DHT key is closer to `near` than to any of `far`. */
function bundleCloserTo (near: PeerId, ...far: PeerId[]): string {
  for (let i = 0; ; i++) {
    const id = createHash('sha256').update(`bundle ${i}`).digest('hex')
    if (far.every(peer => Buffer.compare(distance(near, id), distance(peer, id)) < 0)) return id
  }
}

/** Dials each pair, then waits until each node's routing table holds as many peers as given. */
async function link (pairs: Array<[ShoalNode, ShoalNode]>, tables: Array<[ShoalNode, number]>): Promise<void> {
  for (const [from, to] of pairs) await from.dial(to.getMultiaddrs()[0]!)
  await vi.waitFor(() => { for (const [node, size] of tables) expect(routingTableSize(node)).toBe(size) }, { timeout: 10_000, interval: 20 })
}

/** Runs `use` with `node`'s provider records (warnings ignored), stopped after. */
async function withRecords (node: ShoalNode, init: Omit<ProviderRecordsInit, 'onWarning'>, use: (records: ProviderRecords) => Promise<void>): Promise<void> {
  const records = new ProviderRecords(node, { onWarning: () => {}, ...init })
  try {
    await use(records)
  } finally {
    records.stop()
  }
}

/** Holders a DHT lookup from `node` finds. */
async function lookup (node: ShoalNode, id: string): Promise<string[]> {
  const found: string[] = []
  for await (const provider of node.contentRouting.findProviders(bundleCid(id), { signal: AbortSignal.timeout(10_000) })) found.push(provider.id.toString())
  return found
}

describe('provider records', () => {
  const { start } = useBareNodes()

  it('announces again, when a neighbour joined, only the bundles last announced before it joined', async () => {
    const node = await start()
    const provide = vi.spyOn(node.contentRouting, 'provide')
    const announced = (): string[] => provide.mock.calls.map(([cid]) => cid.toString())
    // Y, once stored, comes first: once X is announced again, the reprovide has already passed over Y.
    const local = [X]
    // Every announce a query (reach: null), whoever the routing table holds: this is the join rule alone.
    await withRecords(node, { bundles: () => local, reprovideDelayMs: 0, reprovideMinIntervalMs: 400, reach: null }, async (records) => {
      await records.announce(X)
      // A neighbour joins: X was announced before it, so X goes again (the first run comes at once).
      records.scheduleReprovide()
      await vi.waitFor(() => { expect(announced()).toEqual([bundleCid(X).toString(), bundleCid(X).toString()]) }, { timeout: 5_000, interval: 20 })
      // Another joins; its run waits for the minimum interval. Y is announced after the join, X is not.
      records.scheduleReprovide()
      local.unshift(Y)
      await records.announce(Y)
      await vi.waitFor(() => { expect(announced()).toHaveLength(4) }, { timeout: 5_000, interval: 20 })
      expect(announced()).toEqual([X, X, Y, X].map(id => bundleCid(id).toString()))
    })
  })

  it('does not announce again, when a neighbour joined, a bundle whose pull its neighbours feed; once that pull is over, it does', async () => {
    const node = await start()
    const provide = vi.spyOn(node.contentRouting, 'provide')
    let fed = true
    const asked: string[] = []
    const fedByNeighbours = (id: string): boolean => {
      asked.push(id)
      return fed
    }
    await withRecords(node, { bundles: () => [X], reprovideDelayMs: 0, reprovideMinIntervalMs: 400, reach: null, fedByNeighbours }, async (records) => {
      // The pull's own announce, then a neighbour joins mid-pull (its run comes at once).
      await records.announce(X)
      records.scheduleReprovide()
      await vi.waitFor(() => { expect(asked).toContain(X) }, { timeout: 5_000, interval: 20 })
      // It was asked, and did not walk: still the one announce.
      expect(provide).toHaveBeenCalledTimes(1)
      // The pull ends: the run after next announces it, with no further join.
      fed = false
      await vi.waitFor(() => { expect(provide).toHaveBeenCalledTimes(2) }, { timeout: 5_000, interval: 20 })
      expect(asked.length).toBeGreaterThanOrEqual(2)
    })
  })

  it('leaves its record at its neighbour, where a node beyond finds it', async () => {
    const [holder, middle, seeker] = await Promise.all([start(), start(), start()])
    await holder.dial(middle.getMultiaddrs()[0]!)
    // Every announce a query (reach: null): where a query's record goes, and that lookups read it.
    await withRecords(holder, { bundles: () => [X], reach: null }, async (records) => {
      await vi.waitFor(async () => {
        await records.announce(X)
        expect((await providerStore(middle).getProviders(bundleCid(X))).map(String)).toEqual([holder.peerId.toString()])
      }, { timeout: 10_000, interval: 100 })
      // The seeker knows only the middle node, whose record names the holder.
      await link([[seeker, middle]], [[seeker, 1]])
      expect(await lookup(seeker, X)).toEqual([holder.peerId.toString()])
    })
  }, 30_000)

  it('sends no provider record while every peer its neighbours know is its neighbour too, and is found all the same', async () => {
    const [a, b, c] = await Promise.all([start(), start(), start()])
    await link([[a, b], [a, c], [b, c]], [[a, 2], [b, 2], [c, 2]])
    const provide = vi.spyOn(a.contentRouting, 'provide')
    await withRecords(a, { bundles: () => [X] }, async (records) => {
      const how = await records.announce(X)
      expect(provide).not.toHaveBeenCalled()
      for (const neighbour of [b, c]) expect(await providerStore(neighbour).getProviders(bundleCid(X))).toEqual([])
      expect(how).toBe('local')
      // A lookup that reaches a is answered by a's own store (in shoal a neighbour pulling it has a's have-list anyway).
      expect(await lookup(b, X)).toEqual([a.peerId.toString()])
    })
  }, 30_000)

  it('sends its records when a neighbour names a node that is not its neighbour, which finds it through them', async () => {
    const [holder, middle, seeker] = await Promise.all([start(), start(), start()])
    await link([[middle, holder], [middle, seeker]], [[holder, 1], [seeker, 1], [middle, 2]])
    // A lookup follows only peers closer to the key than the one that named them: a key closer to
    // the middle node than to the holder, so the seeker's lookup ends at the middle node's record,
    // and than to the seeker, so the holder's walk does not reach the seeker either.
    const id = bundleCloserTo(middle.peerId, holder.peerId, seeker.peerId)
    await withRecords(holder, { bundles: () => [id] }, async (records) => {
      expect(await records.announce(id)).toBe('query')
      // ADD_PROVIDER has no answer: the middle node stores the record after the announce returns.
      await vi.waitFor(async () => {
        expect((await providerStore(middle).getProviders(bundleCid(id))).map(String)).toEqual([holder.peerId.toString()])
      }, { timeout: 10_000, interval: 20 })
      expect(await lookup(seeker, id)).toEqual([holder.peerId.toString()])
    })
  }, 30_000)

  it('sends no record when its walk reaches the node its neighbour named: that node is its neighbour now', async () => {
    const [holder, middle, seeker] = await Promise.all([start(), start(), start()])
    await link([[middle, holder], [middle, seeker]], [[holder, 1], [seeker, 1], [middle, 2]])
    // A key closer to the seeker than to the middle node: the walk asks the seeker too, and stays connected.
    const id = bundleCloserTo(seeker.peerId, middle.peerId)
    await withRecords(holder, { bundles: () => [id] }, async (records) => {
      expect(await records.announce(id)).toBe('local')
      expect(holder.getConnections(seeker.peerId)).not.toHaveLength(0)
      expect(await providerStore(middle).getProviders(bundleCid(id))).toEqual([])
    })
  }, 30_000)

  it('connects to a node its neighbour named and the walk did not reach, and then sends no record', async () => {
    const [holder, middle, seeker] = await Promise.all([start(), start(), start()])
    await link([[middle, holder], [middle, seeker]], [[holder, 1], [seeker, 1], [middle, 2]])
    // The walk stops at the middle node (closer to the key than the seeker); the swarm connects as its discovery would.
    const id = bundleCloserTo(middle.peerId, holder.peerId, seeker.peerId)
    const connect = vi.fn(async (peer: PeerId) => (await holder.dial(peer)).status === 'open')
    await withRecords(holder, { bundles: () => [id], connect }, async (records) => {
      expect(await records.announce(id)).toBe('local')
      expect(connect.mock.calls.map(([peer]) => peer.toString())).toEqual([seeker.peerId.toString()])
      expect(await providerStore(middle).getProviders(bundleCid(id))).toEqual([])
    })
  }, 30_000)

  it('announces with a query while its routing table names a peer it has no connection to', async () => {
    const [holder, middle, gone] = await Promise.all([start(), start(), start()])
    await link([[holder, middle], [holder, gone]], [[holder, 2]])
    await withRecords(holder, { bundles: () => [X], reprovideDelayMs: 0 }, async (records) => {
      expect(await records.announce(X)).toBe('local')
      // Its connection closes; it stays in the routing table (kad-dht drops a contact only when a full bucket's ping fails).
      await holder.hangUp(gone.peerId)
      expect(routingTableSize(holder)).toBe(2)
      // The next join's re-announce finds it beyond the neighbours: X goes out as a query.
      const provide = vi.spyOn(holder.contentRouting, 'provide')
      records.scheduleReprovide()
      await vi.waitFor(() => { expect(provide).toHaveBeenCalledTimes(1) }, { timeout: 10_000, interval: 20 })
      expect(provide.mock.calls[0]?.[0].toString()).toBe(bundleCid(X).toString())
      await vi.waitFor(async () => {
        expect((await providerStore(middle).getProviders(bundleCid(X))).map(String)).toEqual([holder.peerId.toString()])
      }, { timeout: 10_000, interval: 50 })
    })
  }, 30_000)
})
