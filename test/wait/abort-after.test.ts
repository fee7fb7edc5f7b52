import { getEventListeners } from 'node:events'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { abortAfter, withinDeadline } from '../../src/wait/index.js'

setFlagsFromString('--expose-gc')
/** A full garbage collection, as a daemon's heap runs them between a timeout's start and its end. */
const collectGarbage = runInNewContext('gc') as () => void

/** Resolves with the signal's reason once it aborts, or 'not aborted' after `ms`. */
async function abortedWithin (signal: AbortSignal, ms: number): Promise<unknown> {
  return await new Promise((resolve) => {
    const timer = setTimeout(() => { resolve('not aborted') }, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve(signal.reason)
    }, { once: true })
  })
}

describe('abortAfter', () => {
  it('times out after a garbage collection, with the reason AbortSignal.timeout gives', async () => {
    const signal = abortAfter(50, new AbortController().signal)
    // On a later turn, as a daemon's collections run (on this one the stack may still hold the timeout).
    await new Promise((resolve) => { setImmediate(resolve) })
    collectGarbage()
    expect(await abortedWithin(signal, 2_000)).toMatchObject({ name: 'TimeoutError' })
  })

  it('aborts with the given signal\'s reason', () => {
    const parent = new AbortController()
    const signal = abortAfter(60_000, parent.signal)
    const reason = new Error('stopping')
    parent.abort(reason)
    expect(signal.reason).toBe(reason)
    expect(abortAfter(60_000, parent.signal).reason).toBe(reason)
  })

  it('adds no listener to the given signal, however many deadlines it outlives', async () => {
    const lifetime = new AbortController()
    const deadlines = Array.from({ length: 50 }, () => abortAfter(60_000, lifetime.signal))
    expect(getEventListeners(lifetime.signal, 'abort')).toHaveLength(0)
    lifetime.abort(new Error('stopping'))
    expect(deadlines.every(deadline => deadline.aborted)).toBe(true)
  })

  it('times out with no signal given', async () => {
    expect(await abortedWithin(abortAfter(10), 2_000)).toMatchObject({ name: 'TimeoutError' })
  })
})

describe('withinDeadline', () => {
  afterEach(() => { vi.useRealTimers() })

  it('leaves no timer and no listener once the work is done, however long the deadline', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const lifetime = new AbortController()
    for (let i = 0; i < 5; i++) expect(await withinDeadline(30_000, lifetime.signal, async () => i)).toBe(i)
    await expect(withinDeadline(30_000, lifetime.signal, async () => { throw new Error('failed') })).rejects.toThrow('failed')
    // A deadline left to run would go off 30 s after its send, building a TimeoutError for nobody.
    expect(vi.getTimerCount()).toBe(0)
    expect(getEventListeners(lifetime.signal, 'abort')).toHaveLength(0)
  })

  it('aborts the work when the deadline passes, with `expired`\'s error if given', async () => {
    const never = async (within: AbortSignal): Promise<void> => {
      await new Promise((resolve, reject) => { within.addEventListener('abort', () => { reject(within.reason) }, { once: true }) })
    }
    await expect(withinDeadline(10, new AbortController().signal, never)).rejects.toMatchObject({ name: 'TimeoutError' })
    await expect(withinDeadline(10, undefined, never, () => new Error('slow reader'))).rejects.toThrow('slow reader')
  })

  it('aborts the work with the given signal\'s reason, now or later, and not as expired', async () => {
    const parent = new AbortController()
    const reason = new Error('stopping')
    const seen: unknown[] = []
    const running = withinDeadline(60_000, parent.signal, async (within) => {
      await new Promise((resolve) => { within.addEventListener('abort', resolve, { once: true }) })
      seen.push(within.reason)
      throw within.reason
    }, () => new Error('expired'))
    parent.abort(reason)
    await expect(running).rejects.toBe(reason)
    expect(seen).toEqual([reason])
    expect(await withinDeadline(60_000, parent.signal, async within => within.reason)).toBe(reason)
  })
})
