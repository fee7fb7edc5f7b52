import { EventEmitter, getEventListeners } from 'node:events'
import { describe, expect, it } from 'vitest'
import { sleep, waitWhile, wakeOrThrow, wakeOrTimeout, Wakers } from '../../src/wait/index.js'

/** Long enough that a wait which ends early cannot have timed out. */
const NEVER_MS = 60_000

const timers = (): number => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length

describe('wakeOrTimeout', () => {
  it('ends woken when woken, and leaves no waker, timer or abort listener behind', async () => {
    const wakers = new Wakers()
    const controller = new AbortController()
    const before = timers()
    const waiting = wakeOrTimeout(wakers.subscribe, { timeoutMs: NEVER_MS, signal: controller.signal })
    expect(wakers.size).toBe(1)
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1)
    wakers.wakeAll()
    expect(await waiting).toBe('woken')
    expect(wakers.size).toBe(0)
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
    expect(timers()).toBe(before)
  })

  it('ends timed-out when nobody wakes it, and unsubscribes', async () => {
    const wakers = new Wakers()
    expect(await wakeOrTimeout(wakers.subscribe, { timeoutMs: 5 })).toBe('timed-out')
    expect(wakers.size).toBe(0)
  })

  it('ends aborted when the signal aborts, and unsubscribes', async () => {
    const wakers = new Wakers()
    const controller = new AbortController()
    const waiting = wakeOrTimeout(wakers.subscribe, { timeoutMs: NEVER_MS, signal: controller.signal })
    controller.abort()
    expect(await waiting).toBe('aborted')
    expect(wakers.size).toBe(0)
  })

  it('ends at once, without subscribing, when the signal is already aborted', async () => {
    const wakers = new Wakers()
    let subscribed = false
    const outcome = await wakeOrTimeout(wake => { subscribed = true; return wakers.subscribe(wake) }, { timeoutMs: NEVER_MS, signal: AbortSignal.abort() })
    expect(outcome).toBe('aborted')
    expect(subscribed).toBe(false)
  })

  it('wakes every waiter of a Wakers, and a later wake finds nobody', async () => {
    const wakers = new Wakers()
    const waits = [1, 2, 3].map(async () => await wakeOrTimeout(wakers.subscribe, { timeoutMs: NEVER_MS }))
    expect(wakers.size).toBe(3)
    wakers.wakeAll()
    expect(await Promise.all(waits)).toEqual(['woken', 'woken', 'woken'])
    expect(wakers.size).toBe(0)
    wakers.wakeAll()
  })

  it('unsubscribes from an event emitter when an event wakes it', async () => {
    const events = new EventEmitter()
    const waiting = wakeOrTimeout(wake => {
      events.on('joined', wake)
      return () => { events.off('joined', wake) }
    }, { timeoutMs: NEVER_MS })
    events.emit('joined', { peer: 'a' })
    expect(await waiting).toBe('woken')
    expect(events.listenerCount('joined')).toBe(0)
  })

  it('waits without a clock when given no timeout: only a wake or the signal ends it', async () => {
    const wakers = new Wakers()
    const before = timers()
    const waiting = wakeOrTimeout(wakers.subscribe, {})
    expect(timers()).toBe(before)
    wakers.wakeAll()
    expect(await waiting).toBe('woken')
    const controller = new AbortController()
    const aborted = wakeOrTimeout(wakers.subscribe, { signal: controller.signal })
    controller.abort()
    expect(await aborted).toBe('aborted')
    expect(wakers.size).toBe(0)
  })

  it('ends woken, and unsubscribes, when woken while subscribing', async () => {
    const wakers = new Wakers()
    const outcome = await wakeOrTimeout(wake => {
      const unsubscribe = wakers.subscribe(wake)
      wake()
      return unsubscribe
    }, { timeoutMs: NEVER_MS })
    expect(outcome).toBe('woken')
    expect(wakers.size).toBe(0)
  })
})

describe('wakeOrThrow', () => {
  it('resolves when woken', async () => {
    const wakers = new Wakers()
    const waiting = wakeOrThrow(wakers.subscribe, { timeoutMs: NEVER_MS, timeoutError: () => new Error('late') })
    wakers.wakeAll()
    await expect(waiting).resolves.toBeUndefined()
  })

  it('rejects with the caller\'s error on a timeout', async () => {
    const wakers = new Wakers()
    class LateError extends Error { override readonly name = 'LateError' }
    await expect(wakeOrThrow(wakers.subscribe, { timeoutMs: 5, timeoutError: () => new LateError('nothing came') })).rejects.toThrow(LateError)
    expect(wakers.size).toBe(0)
  })

  it('rejects with the signal\'s reason on an abort, as throwIfAborted does', async () => {
    const wakers = new Wakers()
    const controller = new AbortController()
    const reason = new Error('client left')
    const waiting = wakeOrThrow(wakers.subscribe, { timeoutMs: NEVER_MS, signal: controller.signal, timeoutError: () => new Error('late') })
    controller.abort(reason)
    await expect(waiting).rejects.toBe(reason)
    await expect(wakeOrThrow(wakers.subscribe, { timeoutMs: NEVER_MS, signal: controller.signal, timeoutError: () => new Error('late') })).rejects.toBe(reason)
    expect(wakers.size).toBe(0)
  })
})

describe('sleep', () => {
  it('resolves after its time, and rejects with the reason when aborted first', async () => {
    await expect(sleep(1)).resolves.toBeUndefined()
    const controller = new AbortController()
    const sleeping = sleep(NEVER_MS, controller.signal)
    controller.abort(new Error('stop'))
    await expect(sleeping).rejects.toThrow('stop')
  })
})

describe('waitWhile', () => {
  it('looks again at each wake and resolves true once the condition ends, leaving no waker behind', async () => {
    const wakers = new Wakers()
    let busy = 2
    let ended = false
    const waiting = waitWhile(() => busy > 0, wakers.subscribe, { timeoutMs: NEVER_MS }).finally(() => { ended = true })
    busy--
    wakers.wakeAll()
    // One event-loop turn: every microtask of the wake has run.
    await new Promise(resolve => setImmediate(resolve))
    expect(ended).toBe(false)
    expect(wakers.size).toBe(1)
    busy--
    wakers.wakeAll()
    await expect(waiting).resolves.toBe(true)
    expect(wakers.size).toBe(0)
  })

  it('resolves false when its time runs out while the condition still holds', async () => {
    const wakers = new Wakers()
    await expect(waitWhile(() => true, wakers.subscribe, { timeoutMs: 20 })).resolves.toBe(false)
    expect(wakers.size).toBe(0)
  })

  it('rejects with the signal\'s reason when it aborts', async () => {
    const controller = new AbortController()
    const waiting = waitWhile(() => true, new Wakers().subscribe, { timeoutMs: NEVER_MS, signal: controller.signal })
    controller.abort(new Error('stop'))
    await expect(waiting).rejects.toThrow('stop')
  })
})
