import { describe, expect, it } from 'vitest'
import { CpuShortness, eventLoopDelay, LOOP_DELAY_RESOLUTION_MS, type LoopDelaySource } from '../../src/daemon/cpu-shortness.js'

/**
 * The daemon's CPU-shortness signal (what keeps the scheduler to a few holders): a p90 loop
 * delay per window, judged by the median of the last few windows, short at the upper mark and
 * back only under the lower one.
 */

/** A source that hands out the given p90s in order, one per read. */
function source (p90s: Array<number | undefined>): LoopDelaySource & { reads: number } {
  const s = {
    reads: 0,
    readP90: () => p90s[s.reads++],
    stop: () => {},
  }
  return s
}

const init = { windowMs: 1000, windows: 3, enterMs: 10, leaveMs: 5 }

/** Asks once per window after `start`, returning what each ask said. */
function judge (shortness: CpuShortness, windows: number, start = 0): boolean[] {
  const said: boolean[] = []
  for (let w = 1; w <= windows; w++) said.push(shortness.short(start + w * 1000))
  return said
}

describe('CpuShortness', () => {
  it('is short once the median of the last windows reaches the upper mark', () => {
    // The first ask starts the first window (what came before is read and dropped).
    const shortness = new CpuShortness(source([99, 12, 3, 12, 2, 15]), init)
    expect(shortness.short(0)).toBe(false)
    // 12, 3, 12: median 12 (the first judgement needs three windows); not one before.
    expect(judge(shortness, 3)).toEqual([false, false, true])
  })

  it('is not made short by lone slow windows', () => {
    const shortness = new CpuShortness(source([0, 200, 3, 4, 150, 2, 3, 90, 3]), init)
    shortness.short(0)
    expect(judge(shortness, 8)).toEqual(Array(8).fill(false))
  })

  it('judges a window only at its end', () => {
    const delays = source([0, 20, 20, 20])
    const shortness = new CpuShortness(delays, init)
    shortness.short(0)
    judge(shortness, 2)
    expect(shortness.short(2999)).toBe(false)
    expect(delays.reads).toBe(3)
    expect(shortness.short(3000)).toBe(true)
  })

  it('stays short until the median falls under the lower mark', () => {
    const changes: boolean[] = []
    const shortness = new CpuShortness(source([0, 20, 20, 20, 7, 7, 7, 4, 4]), { ...init, onChange: short => changes.push(short) })
    shortness.short(0)
    // Entered at the third window; 7s (between the marks) keep it; the second 4 leaves.
    expect(judge(shortness, 8)).toEqual([false, false, true, true, true, true, true, false])
    expect(changes).toEqual([true, false])
  })

  it('does not judge the delays of a pause between pulls', () => {
    const delays = source([0, 20, 20, 80, 20, 3, 3, 3])
    const shortness = new CpuShortness(delays, init)
    shortness.short(0)
    expect(judge(shortness, 2)).toEqual([false, false])
    // Asked again after ten windows: the 80 is dropped, and so are the windows before it.
    expect(shortness.short(12_000)).toBe(false)
    expect(judge(shortness, 3, 12_000)).toEqual([false, false, false])
  })

  it('starts the next pull short when the last one ended short, and lets go by the steady rule', () => {
    const changes: boolean[] = []
    const shortness = new CpuShortness(source([0, 20, 20, 20, 0, 3, 3, 3]), { ...init, onChange: short => changes.push(short) })
    shortness.short(0)
    expect(judge(shortness, 3)).toEqual([false, false, true])
    // Asked again after a pause (the next pull): still short, until three light windows say otherwise.
    expect(shortness.short(20_000)).toBe(true)
    expect(judge(shortness, 3, 20_000)).toEqual([true, true, false])
    expect(changes).toEqual([true, false])
  })

  it('keeps its state through a window with no delays seen', () => {
    const shortness = new CpuShortness(source([0, 20, 20, 20, undefined, 20]), init)
    shortness.short(0)
    expect(judge(shortness, 5)).toEqual([false, false, true, true, true])
  })
})

describe('eventLoopDelay', () => {
  /**
   * Resolves after `count` firings of a timer with the histogram's own period (an idle window
   * in which the histogram's timer fires about as often; it records from its second firing on)
   * with the most that timer fired late: what a loaded machine added to this loop's delays.
   */
  async function periods (count: number, periodMs: number): Promise<number> {
    return await new Promise<number>(resolve => {
      let left = count
      let latest = 0
      let last = performance.now()
      const timer = setInterval(() => {
        const now = performance.now()
        latest = Math.max(latest, now - last - periodMs)
        last = now
        if (--left === 0) { clearInterval(timer); resolve(latest) }
      }, periodMs)
    })
  }

  it('reads an idle loop near 0 ms, not the timer\'s period (Node 20 records each period whole)', async () => {
    const delays = eventLoopDelay()
    try {
      delays.readP90()
      const late = await periods(8, LOOP_DELAY_RESOLUTION_MS)
      const idle = delays.readP90()
      expect(idle).toBeDefined()
      // Read whole, an idle loop's period alone (50 ms) would come on top of what the machine
      // added; a busy CI machine delays this loop too (64 ms seen at load 16), so the bound is
      // what this window's own timer saw late, plus less than half a period.
      expect(idle).toBeLessThan(late + LOOP_DELAY_RESOLUTION_MS / 2)
    } finally {
      delays.stop()
    }
  })

  it('reads a loop blocked for 120 ms in a window as a delay of that order, with the period taken off', async () => {
    const delays = eventLoopDelay()
    try {
      delays.readP90()
      // A read starts anew: the histogram's next firing only marks the time, so the block comes after it.
      await periods(2, LOOP_DELAY_RESOLUTION_MS)
      const until = Date.now() + 120
      while (Date.now() < until) { /* busy: the histogram's timer cannot fire */ }
      // The overdue timer fires in the next timers phase; a check phase after it, it has recorded.
      await new Promise<void>(resolve => { setTimeout(() => { setImmediate(resolve) }, 0) })
      expect(delays.readP90()).toBeGreaterThan(40)
    } finally {
      delays.stop()
    }
  })

  it('reads a blocked event loop as a delay, and starts anew after a read', async () => {
    const delays = eventLoopDelay(10)
    try {
      delays.readP90()
      // The histogram's timer records from its second firing on: block twice, each time
      // letting the next timers phase (the overdue timer) and a check phase after it run.
      for (let block = 0; block < 2; block++) {
        const until = Date.now() + 200
        while (Date.now() < until) { /* busy: the histogram's timer cannot fire */ }
        await new Promise<void>(resolve => { setTimeout(() => { setImmediate(resolve) }, 0) })
      }
      expect(delays.readP90()).toBeGreaterThanOrEqual(150)
      expect(delays.readP90() ?? 0).toBeLessThan(150)
    } finally {
      delays.stop()
    }
  })
})
