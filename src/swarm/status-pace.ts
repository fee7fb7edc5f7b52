import {
  DEFAULT_STATUS_INTERVAL_MS, MAX_STATUS_FLUSH_DELAY_MS, MAX_STATUS_INTERVAL_MS, MIN_STATUS_INTERVAL_MS, STATUS_BUDGET_BYTES_PER_SECOND, STATUS_FANOUT, STATUS_FLUSH_WINDOWS_PER_PERIOD,
  STATUS_REFRESH_WIRE_BYTES,
} from './status-constants.js'

/**
 * The gossip's pure rules, shared with scripts/simulate-gossip.ts so the simulator measures
 * what the daemon does: how long a heartbeat period is, how long a status waits for its batch,
 * and which neighbours hear a status.
 */

/** Each step of the adaptive period is a quarter longer than the last (see statusIntervalMs). */
const INTERVAL_STEP = 1.25

/**
 * The heartbeat period for a fleet of `knownNodes`: the configured one, lengthened in steps of
 * a quarter until this node's share of everyone's refreshes (each received about STATUS_FANOUT
 * times) fits STATUS_BUDGET_BYTES_PER_SECOND. In steps, not an exact fit, so a fleet whose size
 * wobbles does not change each node's promised period (its body) at every heartbeat.
 */
export function statusIntervalMs (knownNodes: number, configuredMs = DEFAULT_STATUS_INTERVAL_MS): number {
  const neededMs = knownNodes * STATUS_FANOUT * STATUS_REFRESH_WIRE_BYTES * 1000 / STATUS_BUDGET_BYTES_PER_SECOND
  let interval = Math.max(MIN_STATUS_INTERVAL_MS, configuredMs)
  while (interval < neededMs && interval * INTERVAL_STEP <= MAX_STATUS_INTERVAL_MS) interval *= INTERVAL_STEP
  return Math.round(interval)
}

/** How long a status waits in the outbox for others to share its batch (notices and refutations wait less). */
export function statusFlushDelayMs (intervalMs: number): number {
  return Math.min(MAX_STATUS_FLUSH_DELAY_MS, intervalMs / STATUS_FLUSH_WINDOWS_PER_PERIOD)
}

/**
 * Up to `fanout` of `candidates`, chosen at random (a partial Fisher–Yates shuffle): push
 * gossip reaches everyone with high probability only when targets are random.
 */
export function pickTargets<T> (candidates: T[], fanout: number, random: () => number): T[] {
  const pool = [...candidates]
  const picked: T[] = []
  while (picked.length < fanout && pool.length > 0) {
    const i = Math.floor(random() * pool.length)
    picked.push(pool[i] as T)
    pool[i] = pool[pool.length - 1] as T
    pool.pop()
  }
  return picked
}
