import { describe, expect, it, vi } from 'vitest'
import { bundleCid } from '../../src/swarm/content-id.js'
import { ProviderRecords } from '../../src/swarm/providers.js'
import { useBareNodes } from './bare-nodes.js'

const X = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
const Y = '0c5b1e3a7d2f4e6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a'

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
})
