import { describe, expect, it } from 'vitest'
import { FirstCopyQueues } from '../../src/swarm/first-copy-queues.js'

/**
 * The gateway's count of never-sent chunks queued per stream (first-copy-queues.ts): what a
 * held second copy asks on every pick, so it must say what a scan of every queue would.
 */
describe('first-copy queues', () => {
  it('counts a stream until its last never-sent chunk is picked or cancelled', () => {
    const queues = new FirstCopyQueues<string>()
    queues.queued('a', 'obj:0')
    queues.queued('a', 'obj:1')
    queues.queued('a', 'obj:1')
    expect([...queues.sessions()]).toEqual(['a'])
    expect(queues.unqueued('a', 'obj:0')).toBe(false)
    expect(queues.unqueued('a', 'obj:7')).toBe(false)
    expect(queues.unqueued('a', 'obj:1')).toBe(true)
    expect([...queues.sessions()]).toEqual([])
  })

  it('makes a chunk a second copy in every other queue once its first copy goes', () => {
    const queues = new FirstCopyQueues<string>()
    queues.queued('a', 'obj:3')
    queues.queued('b', 'obj:3')
    queues.queued('b', 'obj:4')
    // Picked at a (no longer queued there), then sent: b's 3 is a copy now, its 4 still first.
    queues.unqueued('a', 'obj:3')
    expect(queues.sent('obj:3')).toEqual([])
    expect([...queues.sessions()]).toEqual(['b'])
    expect(queues.sent('obj:4')).toEqual(['b'])
    expect([...queues.sessions()]).toEqual([])
    // Its first copy went: queued again later, it is not counted by the caller, and leaving is no event.
    expect(queues.unqueued('b', 'obj:3')).toBe(false)
  })

  it('forgets a closed stream and everything on clear', () => {
    const queues = new FirstCopyQueues<string>()
    queues.queued('a', 'obj:0')
    queues.queued('b', 'obj:0')
    expect(queues.closed('a')).toBe(true)
    expect(queues.closed('a')).toBe(false)
    expect(queues.sent('obj:0')).toEqual(['b'])
    queues.queued('c', 'obj:1')
    queues.clear()
    expect([...queues.sessions()]).toEqual([])
    expect(queues.sent('obj:1')).toEqual([])
  })
})
