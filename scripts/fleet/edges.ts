// The edges' pulls, started at one moment and retried until complete, and the faults
// injected into them mid-transfer.
import type { Bed, Host, LinkCounters } from './bed.js'
import { sleep } from './proc.js'

/** What a mode does to pull once on one edge. */
export interface EdgeDriver {
  /** One complete pull; rejects if it fails or `signal` aborts it. */
  attempt: (signal: AbortSignal, attempt: number) => Promise<void>
}

const RETRY_PAUSE_MS = 1000
const MAX_ATTEMPTS = 20

/**
 * Pulls on one edge until a pull succeeds: a fault or a flaky link may fail an
 * attempt, and what counts is when the edge ends up with a complete copy.
 */
export class EdgeRunner {
  attempts = 0
  completionSeconds: number | null = null
  readonly attemptErrors: string[] = []
  private current: AbortController | undefined
  private gate: Promise<void> = Promise.resolve()

  constructor (readonly host: Host, readonly name: string, private readonly driver: EdgeDriver) {}

  /** The next attempt waits for `until` (a daemon restarting after a kill). */
  hold (until: Promise<unknown>): void {
    this.gate = until.then(() => undefined, () => undefined)
  }

  /** Aborts the attempt in flight; the runner starts another once the gate opens. */
  interrupt (reason: string): void {
    this.current?.abort(new Error(reason))
  }

  get done (): boolean {
    return this.completionSeconds !== null
  }

  /** Resolves when the edge is complete or `signal` (the run's deadline) aborts; never rejects. */
  async run (t0: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted && this.attempts < MAX_ATTEMPTS) {
      await this.gate
      if (signal.aborted) break
      this.attempts++
      const controller = new AbortController()
      this.current = controller
      const onAbort = (): void => { controller.abort(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
      try {
        await this.driver.attempt(controller.signal, this.attempts)
        this.completionSeconds = (performance.now() - t0) / 1000
        return
      } catch (err) {
        const why = controller.signal.aborted ? String((controller.signal.reason as Error | undefined)?.message ?? controller.signal.reason) : (err as Error).message
        this.attemptErrors.push(`attempt ${this.attempts} at ${((performance.now() - t0) / 1000).toFixed(1)} s: ${why.slice(0, 500)}`)
        // An interrupted attempt restarts as soon as the gate allows; a failed one after a pause.
        if (!controller.signal.aborted) await sleep(RETRY_PAUSE_MS, signal).catch(() => undefined)
      } finally {
        signal.removeEventListener('abort', onAbort)
        this.current = undefined
      }
    }
  }
}

export interface FaultContext {
  bed: Bed
  victim: EdgeRunner
  baseline: LinkCounters
  bundleBytes: number
  t0: number
  signal: AbortSignal
  log: (line: string) => void
}

export interface InjectedFault { atSeconds: number | null, detail: string }

/**
 * Waits until the victim has received about half the bundle (its link's rx counter:
 * a measure that does not depend on the software under test), then runs `inject`.
 * Returns when the fault is over, or without injecting if the victim finished first.
 */
export async function atHalfProgress (context: FaultContext, inject: () => Promise<string>): Promise<InjectedFault> {
  const { bed, victim, baseline, bundleBytes, t0, signal } = context
  for (;;) {
    if (signal.aborted || victim.done) return { atSeconds: null, detail: 'not injected: the victim finished before half its download' }
    const now = await bed.counters(victim.host, signal).catch(() => undefined)
    if (now !== undefined && now.rxBytes - baseline.rxBytes >= bundleBytes / 2) break
    await sleep(100, signal).catch(() => undefined)
  }
  const atSeconds = (performance.now() - t0) / 1000
  context.log(`fault on ${victim.name} at ${atSeconds.toFixed(1)} s`)
  return { atSeconds, detail: await inject() }
}

export const PARTITION_MS = 10_000

/** Takes the victim's link down for PARTITION_MS, then up again whatever happens meanwhile. */
export async function partition (context: FaultContext): Promise<InjectedFault> {
  return await atHalfProgress(context, async () => {
    await context.bed.setLink(context.victim.host, false)
    try {
      await sleep(PARTITION_MS, context.signal).catch(() => undefined)
    } finally {
      await context.bed.setLink(context.victim.host, true)
    }
    return `link down for ${PARTITION_MS / 1000} s`
  })
}
