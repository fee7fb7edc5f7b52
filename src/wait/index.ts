export { wakeOrTimeout, wakeOrThrow, waitWhile, sleep, Wakers } from './wake-or-timeout.js'
export { abortAfter, withinDeadline } from './abort-after.js'
export { raceAbort } from './race-abort.js'
export type { WaitOutcome, Subscribe, WaitOptions, WaitOrThrowOptions } from './wake-or-timeout.js'
