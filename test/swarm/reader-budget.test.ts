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
      gauge.handed()
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
      gauge.handed()
      close()
    }
    expect([budget.read('a'), budget.read('b'), budget.read('c')]).toEqual([0, 100, 100])
  })

  it('counts no read before the reader credits our bytes: not the negotiation\'s credit, not a frame still being handed down', () => {
    const budget = new ReaderBudget({ strangerBytes: 10, pollMs: 10, maxPeers: 2 })
    // A yamux stream: the protocol's negotiation (40 bytes) is out of the window when we start.
    const stream = { writeBufferLength: 0, sendWindowCapacity: 1000 - 40 }
    const { gauge } = budget.track('peer', stream as unknown as ChunkStream)
    // Its credit comes before our first send: the window is whole again.
    stream.sendWindowCapacity = 1000
    gauge.sentBytes(300)
    // Half handed down so far, the rest waits for the next piece's turn.
    stream.sendWindowCapacity -= 150
    expect(budget.read('peer')).toBe(0)
    stream.sendWindowCapacity -= 150
    gauge.handed()
    expect(budget.read('peer')).toBe(0)
    // The reader takes 100 bytes of ours.
    stream.sendWindowCapacity += 100
    expect(budget.read('peer')).toBe(100)
    expect(budget.unread('peer')).toBe(200)
  })
})
