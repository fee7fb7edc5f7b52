import { describe, expect, it, vi } from 'vitest'
import { bundleCid } from '../../src/swarm/content-id.js'
import { ProviderRecords } from '../../src/swarm/providers.js'
import { useBareNodes } from './bare-nodes.js'
import type { ShoalNode } from '../../src/swarm/libp2p-node.js'
import type { PeerId } from '@libp2p/interface'

const X = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
const Y = '0c5b1e3a7d2f4e6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a'

/** kad-dht (16.x) as the tests reach into it: its own provider store. */
const providerStore = (node: ShoalNode): { getProviders: (cid: ReturnType<typeof bundleCid>) => Promise<PeerId[]> } =>
  (node.services.dht as unknown as { providers: { getProviders: (cid: ReturnType<typeof bundleCid>) => Promise<PeerId[]> } }).providers

const routingTableSize = (node: ShoalNode): number => (node.services.dht as unknown as { routingTable: { size: number } }).routingTable.size

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
    const records = new ProviderRecords(node, { bundles: () => local, onWarning: () => {}, reprovideDelayMs: 0, reprovideMinIntervalMs: 400 })
    try {
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
    } finally {
      records.stop()
    }
  })

  it('leaves its record at its neighbour, where a node beyond finds it', async () => {
    const [holder, middle, seeker] = await Promise.all([start(), start(), start()])
    await holder.dial(middle.getMultiaddrs()[0]!)
    const records = new ProviderRecords(holder, { bundles: () => [X], onWarning: () => {} })
    try {
      await vi.waitFor(async () => {
        await records.announce(X)
        expect((await providerStore(middle).getProviders(bundleCid(X))).map(String)).toEqual([holder.peerId.toString()])
      }, { timeout: 10_000, interval: 100 })
      // The seeker knows only the middle node, whose record names the holder.
      await seeker.dial(middle.getMultiaddrs()[0]!)
      await vi.waitFor(() => { expect(routingTableSize(seeker)).toBe(1) }, { timeout: 10_000, interval: 20 })
      expect(await lookup(seeker, X)).toEqual([holder.peerId.toString()])
    } finally {
      records.stop()
    }
  }, 30_000)
})
