import { describe, expect, it } from 'vitest'
import { ChunkBitmap } from '../../src/manifest/index.js'
import { HaveList } from '../../src/swarm/have-list.js'

function bitmap (chunkCount: number, indexes: number[]): ChunkBitmap {
  const map = new ChunkBitmap(chunkCount)
  for (const i of indexes) map.set(i)
  return map
}

describe('have-list coverage', () => {
  const objects = [{ hash: 'a', chunkCount: 4 }, { hash: 'b', chunkCount: 1 }]

  it('counts chunks held across several neighbours, whole objects and bitmaps alike', () => {
    const list = new HaveList()
    list.addPeer('p1', { gateway: false, bundles: [] })
    list.addPeer('p2', { gateway: false, bundles: [] })
    list.setObject('p1', 'a', bitmap(4, [0, 2]))
    list.setObject('p2', 'a', bitmap(4, [1, 3]))
    list.setObject('p2', 'b', true)
    expect(list.covers(objects, () => true)).toBe(true)
  })

  it('is not covered while one chunk is held by nobody', () => {
    const list = new HaveList()
    list.addPeer('p1', { gateway: false, bundles: [] })
    list.setObject('p1', 'a', bitmap(4, [0, 1, 2]))
    list.setObject('p1', 'b', true)
    expect(list.covers(objects, () => true)).toBe(false)
  })

  it('leaves out the neighbours the caller cannot use (banned, disconnected)', () => {
    const list = new HaveList()
    list.addPeer('good', { gateway: false, bundles: [] })
    list.addPeer('banned', { gateway: false, bundles: [] })
    list.setObject('good', 'b', true)
    list.setObject('banned', 'a', true)
    expect(list.covers(objects, peer => peer !== 'banned')).toBe(false)
    expect(list.covers(objects, () => true)).toBe(true)
  })
})

describe('have-list holder counts', () => {
  it('counts the holders of a chunk, and without gateways the edges among them', () => {
    const list = new HaveList()
    list.addPeer('gateway', { gateway: true, bundles: [] })
    list.addPeer('e1', { gateway: false, bundles: [] })
    list.addPeer('e2', { gateway: false, bundles: [] })
    list.setObject('gateway', 'a', true)
    list.setObject('e1', 'a', bitmap(4, [0, 1]))
    list.setObject('e2', 'a', true)
    expect([0, 1, 2, 3].map(i => list.holderCount('a', i))).toEqual([3, 3, 2, 2])
    expect([0, 1, 2, 3].map(i => list.edgeHolderCount('a', i))).toEqual([2, 2, 1, 1])
    expect(list.edgeHolderCount('a', 2, 'e2')).toBe(0)
    expect(list.edgeHolderCount('b', 0)).toBe(0)
  })
})
