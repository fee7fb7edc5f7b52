import { describe, expect, it } from 'vitest'
import type { StoreEvents } from '../../src/store/index.js'
import { connect, useSwarms, type TestNode } from './swarm-fixture.js'

const ID_A = 'a'.repeat(64)

/** Resolves once `count` events of `event` have come from `node`'s store (counted from now). */
async function storeEvents<E extends keyof StoreEvents> (node: TestNode, event: E, count: number, timeoutMs = 30_000): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let seen = 0
    const timer = setTimeout(() => { reject(new Error(`${seen} of ${count} ${event} events within ${timeoutMs} ms`)) }, timeoutMs)
    node.store.on(event, () => {
      if (++seen < count) return
      clearTimeout(timer)
      resolve()
    })
  })
}

describe('ref records heard from a trusted publisher', () => {
  const { node } = useSwarms()

  it('are kept up to the bound per publisher, the rest evicted and counted; the node\'s own refs are not', async () => {
    const gateway = await node()
    const edge = await node({ trust: [gateway.swarm.peerId], heardRefs: { maxPerPublisher: 5 } })
    const published = 8
    for (let i = 0; i < published; i++) await gateway.swarm.publishRefs([{ ref: `registry.example.com/app:${i}`, bundleId: ID_A }])
    await edge.swarm.publishRefs(Array.from({ length: 3 }, (_, i) => ({ ref: `registry.example.com/own:${i}`, bundleId: ID_A })))
    const heard = storeEvents(edge, 'ref:updated', published)
    const evicted = storeEvents(edge, 'ref:evicted', published - 5)
    await connect(gateway, edge)
    await Promise.all([heard, evicted])
    const names = await edge.store.refNames()
    expect(names.filter(n => n.includes('/app:'))).toHaveLength(5)
    expect(names.filter(n => n.includes('/own:'))).toHaveLength(3)
    expect(edge.store.heardRefsEvicted).toBe(published - 5)
    // What it evicted it no longer hands on: a node that joins through it gets five.
    const joiner = await node({ trust: [gateway.swarm.peerId] })
    const joined = storeEvents(joiner, 'ref:updated', 5)
    await connect(edge, joiner)
    await joined
    expect((await joiner.store.refNames()).filter(n => n.includes('/app:'))).toHaveLength(5)
  })
})
