import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'

/**
 * Whether the daemon is short of CPU, from its own event loop's delay: the scheduler keeps its
 * requests to a few edge holders only then (SchedulerInit.cpuShort, issue 10). A timer that
 * fires late means the main thread got less CPU than it wanted, whether the machine is
 * crowded (the process waits to run) or the daemon's own work fills its thread; either way each
 * holder we exchange with costs what there is too little of. Why this signal, and the figures
 * behind the thresholds: docs/architecture.md, "K that follows the event loop's delay".
 */

/** Loop delays seen since the last read. */
export interface LoopDelaySource {
  /** The 90th percentile of the delays since the last read, in ms (undefined: none seen), and starts anew. */
  readP90: () => number | undefined
  stop: () => void
}

export interface CpuShortnessInit {
  /** The window each p90 is taken over. */
  windowMs?: number
  /** The daemon is judged by the median of the last this many windows' p90s (a lone slow window, a pull's start, is not a shortage). */
  windows?: number
  /** That median at or above this makes the daemon short. */
  enterMs?: number
  /** A short daemon stops being short when that median falls under this. */
  leaveMs?: number
  /** Told of each change, with the median p90 delay that made it. */
  onChange?: (short: boolean, delayMs: number) => void
}

/** Two seconds: 40 delays at the source's resolution, and two of the scheduler's ticks. */
export const CPU_SHORT_WINDOW_MS = 2_000
/** Ten seconds of windows: a set's gain is that it stays (docs/architecture.md). */
export const CPU_SHORT_WINDOWS = 5
/** On the 16-host bed edges read 10–40 ms through their pulls, on the 8-host bed 2–5 (docs/architecture.md). */
export const CPU_SHORT_ENTER_MS = 10
export const CPU_SHORT_LEAVE_MS = 5
/** The histogram's timer: 20 wake-ups a second, ~0.1% of a core (every 20 ms: 0.35%, on top of an edge's ~100 wake-ups a second). */
export const LOOP_DELAY_RESOLUTION_MS = 50
/** The histogram stops when not read for this long (no pull asks): an idle daemon pays nothing. */
export const LOOP_DELAY_IDLE_MS = 10_000

/** Asked after this many windows unasked (no pull ran), the delays seen are not judged. */
const STALE_WINDOWS = 3

export class CpuShortness {
  private readonly windowMs: number
  private readonly windows: number
  private readonly enterMs: number
  private readonly leaveMs: number
  private readonly onChange: ((short: boolean, delayMs: number) => void) | undefined
  private windowStart: number | undefined
  /** The last `windows` windows' p90s, oldest first. */
  private readonly recent: number[] = []
  /**
   * Kept through a pause: a daemon short when its last pull ended starts the next one short (a
   * fleet pulling image after image), and the steady rule lets go ten seconds in if it is not.
   */
  private shortNow = false

  constructor (private readonly source: LoopDelaySource, init: CpuShortnessInit = {}) {
    this.windowMs = init.windowMs ?? CPU_SHORT_WINDOW_MS
    this.windows = init.windows ?? CPU_SHORT_WINDOWS
    this.enterMs = init.enterMs ?? CPU_SHORT_ENTER_MS
    this.leaveMs = init.leaveMs ?? CPU_SHORT_LEAVE_MS
    this.onChange = init.onChange
  }

  /** Whether the daemon is short of CPU at `now` (ms); a window is judged when it is asked past its end. */
  short (now: number): boolean {
    if (this.windowStart === undefined || now - this.windowStart >= STALE_WINDOWS * this.windowMs) {
      // A window starts at the first ask (after a pause, anew): delays from before (start-up,
      // idling between pulls) do not count, nor do the windows before the pause.
      this.source.readP90()
      this.windowStart = now
      this.recent.length = 0
      return this.shortNow
    }
    if (now - this.windowStart < this.windowMs) return this.shortNow
    this.windowStart = now
    const p90 = this.source.readP90()
    if (p90 === undefined) return this.shortNow
    this.recent.push(p90)
    if (this.recent.length > this.windows) this.recent.shift()
    if (this.recent.length < this.windows) return this.shortNow
    const delay = median(this.recent)
    if (this.shortNow ? delay < this.leaveMs : delay >= this.enterMs) {
      this.shortNow = !this.shortNow
      this.onChange?.(this.shortNow, delay)
    }
    return this.shortNow
  }
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/**
 * The process's own event loop delay (perf_hooks), the timer's period taken off. The histogram
 * runs from the first read until none came for `idleMs`.
 */
export function eventLoopDelay (resolutionMs = LOOP_DELAY_RESOLUTION_MS, idleMs = LOOP_DELAY_IDLE_MS): LoopDelaySource {
  const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: resolutionMs })
  const idle = setTimeout(() => { histogram.disable() }, idleMs)
  idle.unref()
  return {
    readP90: () => {
      // Node 20 records each period whole (a timer on time reads as its resolution).
      const p90 = histogram.count === 0 ? undefined : Math.max(0, histogram.percentile(90) / 1e6 - resolutionMs)
      histogram.reset()
      histogram.enable()
      idle.refresh()
      return p90
    },
    stop: () => {
      clearTimeout(idle)
      histogram.disable()
    },
  }
}
