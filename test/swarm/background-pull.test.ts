import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { connect, nextEvent, patternBytes, seed, useSwarms } from './swarm-fixture.js'

const MiB = 1024 * 1024

/**
 * A preheat is a background pull (PullOptions.background): on an edge that is preheating, a
 * containerd pull of another bundle must get its bytes first (issue 11: "lower priority than a
 * containerd pull"). Real swarms over TCP; the edge's download cap makes the link the limit.
 */
describe('a background pull', () => {
  const { node, tempDir } = useSwarms()

  it('yields the link to a foreground pull of another bundle that starts while it runs: the foreground one finishes first', async () => {
    const holder = await node()
    const edge = await node({ maxDownloadBytesPerSecond: 16 * MiB })
    const work = await tempDir()
    const preheat = await seed(holder, join(work, 'preheat'), { 'layer.bin': patternBytes(40 * MiB, 1) })
    const wanted = await seed(holder, join(work, 'wanted'), { 'layer.bin': patternBytes(16 * MiB, 2) })
    await connect(edge, holder)
    // The foreground bundle's manifest first (as a registry client's manifest request would):
    // its pull then enlists the moment it starts, not a manifest round trip later.
    await edge.swarm.pull(wanted, { objects: new Set() })

    const order: string[] = []
    edge.swarm.on('pull:completed', ({ bundleId }) => { order.push(bundleId === preheat ? 'preheat' : bundleId === wanted ? 'wanted' : bundleId) })
    // The preheat runs until 12 MiB are left, then the foreground pull (16 MiB) starts.
    const nearlyDone = nextEvent(edge.swarm, 'pull:progress', p => p.bundleId === preheat && p.presentBytes >= 28 * MiB, 60_000)
    const background = edge.swarm.pull(preheat, { background: true })
    await nearlyDone
    const foreground = edge.swarm.pull(wanted)
    await Promise.all([background, foreground])
    // Sharing the link by rarity alike, the preheat's 12 MiB would usually finish before the 16.
    expect(order).toEqual(['wanted', 'preheat'])
    for (const id of [preheat, wanted]) expect((await edge.store.listBundles()).find(b => b.id === id)?.complete).toBe(true)
  }, 120_000)
})
