import { afterEach, describe, expect, it, vi } from 'vitest'
import { ChunkServer } from '../../src/swarm/chunk-protocol.js'
import { ADVERTISE_GRACE_MS, TAKER_AFTER_CHUNKS } from '../../src/swarm/constants.js'
import { HaveList } from '../../src/swarm/have-list.js'
import { LocalBundles } from '../../src/swarm/local-bundles.js'
import { Semaphore } from '../../src/swarm/semaphore.js'

/**
 * Who the chunk server takes for a taker (served after the askers that share): a peer that
 * never greeted, or a neighbour that was sent more than a few chunks, had time to advertise
 * them and advertises nothing. On a busy machine an honest edge was sent its fifth chunk
 * before its first advertisement arrived (~0.5 s at load 5-9) and waited a second behind the
 * other edge for each chunk while it counted as one. The clock is faked (Date only).
 */

describe('the chunk server\'s takers', () => {
  afterEach(() => { vi.useRealTimers() })

  function server (): { chunks: ChunkServer, haveList: HaveList } {
    const haveList = new HaveList()
    const chunks = new ChunkServer(
      { store: { readChunk: async () => new Uint8Array(0) }, local: new LocalBundles(), haveList, uploadSlots: new Semaphore(16) },
      { gateway: true, onUploaded: () => {} },
    )
    return { chunks, haveList }
  }

  it('a peer that never greeted on the have protocol is one at once', () => {
    expect(server().chunks.isTaker('stranger')).toBe(true)
  })

  it('a neighbour sent more than a few chunks that advertises none is one only once it had time to advertise', () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const { chunks, haveList } = server()
    haveList.addPeer('edge', { gateway: false, bundles: [] })
    for (let i = 0; i <= TAKER_AFTER_CHUNKS; i++) chunks.recordSent(`obj:${i}`, 'edge', 'conn', 'obj', i)
    // Its first advertisement may still be on its way.
    expect(chunks.isTaker('edge')).toBe(false)
    vi.setSystemTime(Date.now() + ADVERTISE_GRACE_MS + 1)
    expect(chunks.isTaker('edge')).toBe(true)
    // Once it advertises, it shares.
    haveList.setObject('edge', 'obj', true)
    expect(chunks.isTaker('edge')).toBe(false)
  })

  it('a neighbour sent only a few chunks is not one, however long ago', () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const { chunks, haveList } = server()
    haveList.addPeer('edge', { gateway: false, bundles: [] })
    for (let i = 0; i < TAKER_AFTER_CHUNKS; i++) chunks.recordSent(`obj:${i}`, 'edge', 'conn', 'obj', i)
    vi.setSystemTime(Date.now() + 10 * ADVERTISE_GRACE_MS)
    expect(chunks.isTaker('edge')).toBe(false)
  })
})
