import { describe, expect, it } from 'vitest'
import { ReaderBudget } from '../../src/swarm/reader-budget.js'
import type { ChunkStream } from '../../src/swarm/chunk-stream.js'

/** A stream whose reader took everything sent (no write buffer, no send window to watch). */
const drained = (): ChunkStream => ({ writeBufferLength: 0 }) as unknown as ChunkStream

describe('ReaderBudget', () => {
  it('keeps what a peer read on every stream that closed, not only the last', () => {
    const budget = new ReaderBudget({ strangerBytes: 10, pollMs: 10, maxPeers: 4 })
    for (const bytes of [100, 50]) {
      const { gauge, close } = budget.track('peer', drained())
      gauge.sentBytes(bytes)
      close()
    }
    expect(budget.read('peer')).toBe(150)
    expect(budget.allowance('peer')).toBe(150)
  })

  it('forgets the reads of the peer whose stream closed longest ago past maxPeers', () => {
    const budget = new ReaderBudget({ strangerBytes: 10, pollMs: 10, maxPeers: 2 })
    for (const peer of ['a', 'b', 'c']) {
      const { gauge, close } = budget.track(peer, drained())
      gauge.sentBytes(100)
      close()
    }
    expect([budget.read('a'), budget.read('b'), budget.read('c')]).toEqual([0, 100, 100])
  })
})
