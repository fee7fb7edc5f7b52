import { SlowReaderError } from './errors.js'

/**
 * How long a chunk stream has waited on its reader with nothing read: one clock per stream,
 * across all its waits on the reader (its pace, the peer's reader budget, a send), so a reader
 * that stops is charged once the clock reaches `limitMs` (CHUNK_SEND_TIMEOUT_MS), whichever
 * waits that time was spread over. Each wait with a deadline of its own let a stream that got
 * budget room from a sibling stream's close (the sibling charged a slow reader) start a fresh
 * 30 s wait, its pace after a send into the window: charged ~60 s after the reader stopped
 * (docs/architecture.md, "One clock per stream").
 *
 * Only the reader restarts it: its reads (`read` growing, what its muxer credited back) or, in
 * the budget wait, the peer's reads on its other streams (`restart`). It stops between waits
 * (reading from disk, our upload cap, a taker's turn: ours, not the reader's) and starts over
 * when the stream has nothing left to send (`clear`).
 */
export class ReaderClock {
  /** Waiting time counted in waits that ended. */
  private waitedMs = 0
  /** When the wait under way started (or the clock last restarted in it); undefined between waits. */
  private since: number | undefined
  /** What the reader had read when the clock last looked. */
  private lastRead: number

  constructor (private readonly read: () => number, readonly limitMs: number, private readonly now: () => number = Date.now) {
    this.lastRead = read()
  }

  /** Whether the stream is waiting on its reader now (its pace, a send, the peer's budget). */
  get running (): boolean {
    return this.since !== undefined
  }

  /** A wait on the reader begins (or goes on). */
  run (): void {
    this.look()
    this.since ??= this.now()
  }

  /** The wait ended: what comes next is ours to do. */
  pause (): void {
    this.look()
    if (this.since === undefined) return
    this.waitedMs += this.now() - this.since
    this.since = undefined
  }

  /** The reader read: its time starts over. */
  restart (): void {
    this.waitedMs = 0
    if (this.since !== undefined) this.since = this.now()
    this.lastRead = this.read()
  }

  /** Nothing is left to send on the stream: the next wait starts a fresh clock. */
  clear (): void {
    this.waitedMs = 0
    this.since = undefined
    this.lastRead = this.read()
  }

  /** Milliseconds of waiting left before the reader is a slow one. */
  leftMs (): number {
    this.look()
    return this.limitMs - this.waitedMs - (this.since === undefined ? 0 : this.now() - this.since)
  }

  private look (): void {
    if (this.read() > this.lastRead) this.restart()
  }
}

/**
 * How often a wait looks at its reader's reads. A read is seen only when the clock is looked at,
 * and the clock starts over from then: looked at only when it was due to run out, a read just
 * after the wait began (credits on their way when the reader stopped) started a fresh 30 s at
 * the 30 s mark, and the stream was charged ~60 s after its reader stopped (hostile-lanes: 4 of
 * 15 traced runs). Looked at every second, a read counts from at most a second after it came.
 */
export const READER_CLOCK_LOOK_MS = 1_000

/**
 * Runs `wait` on the clock: it fails with SlowReaderError once the clock runs out (not at a
 * deadline of its own; the clock is looked at every READER_CLOCK_LOOK_MS, since the reader may
 * have read meanwhile), or with `signal`'s reason.
 */
export async function onReaderClock (clock: ReaderClock, signal: AbortSignal, wait: (within: AbortSignal) => Promise<void>): Promise<void> {
  clock.run()
  const controller = new AbortController()
  const onAbort = (): void => { controller.abort(signal.reason) }
  let timer: NodeJS.Timeout | undefined
  let ranOut = false
  const look = (): void => {
    const left = clock.leftMs()
    if (left > 0) {
      timer = setTimeout(look, Math.min(left, READER_CLOCK_LOOK_MS))
      timer.unref()
      return
    }
    ranOut = true
    controller.abort(new SlowReaderError(clock.limitMs))
  }
  if (signal.aborted) onAbort()
  else signal.addEventListener('abort', onAbort, { once: true })
  try {
    look()
    if (ranOut) throw new SlowReaderError(clock.limitMs)
    await wait(controller.signal)
  } catch (err) {
    if (ranOut && !signal.aborted) throw new SlowReaderError(clock.limitMs)
    throw err
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', onAbort)
    clock.pause()
  }
}
