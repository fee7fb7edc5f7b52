import type { IncomingMessage } from 'node:http'
import { RecentMap } from '../recent/index.js'
import type { AccessDeniedError } from './access-policy.js'
import type { HttpLogger } from './types.js'

/**
 * The window in which a kind of refusal (code, Host, client address) is logged once. A
 * misconfiguration refuses every request it touches, so it shows again in the next window even
 * if strangers' refusals came first in this one.
 */
export const REFUSAL_LOG_WINDOW_MS = 10 * 60 * 1000
/**
 * How many kinds a listener logs in one window. Refusals are what a stranger can cause at will
 * (a web page, a scanner), so the log takes this many, says it stops, and counts the rest by
 * kind; the most frequent of those are named at the next window (see `summary`).
 */
export const LOGGED_REFUSALS_MAX = 16
/** Kinds remembered (logged this window, or counted past the cap): a flood of new Hosts cannot grow the memory. */
const REFUSAL_KINDS_KEPT = 1024
/** Kinds named in the summary of what a window did not log. */
const SUMMARY_KINDS = 4

interface Kind {
  fields: Record<string, unknown>
  /** Refusals of this kind past the cap in the current window. */
  missed: number
}

/**
 * Logs a refused request once per kind in each window: containerd answers a 403 or 401 from its
 * mirror by going to the next host, so a mirror reached by a name missing from --allowed-host (or
 * a push from outside --push-network) showed nothing in the daemon's log while every pull went
 * past it. A log that stopped for good after its first 16 kinds left a daemon that strangers had
 * reached first silent about a later misconfiguration, for its whole life.
 */
export function createRefusalLog (logger: HttpLogger | undefined, now: () => number = Date.now): (req: IncomingMessage, err: AccessDeniedError) => void {
  let windowStart = Number.NEGATIVE_INFINITY
  let logged = 0
  let kinds = new RecentMap<string, Kind>(REFUSAL_KINDS_KEPT)
  /** What the window that ends did not log: the total, and its most frequent kinds. */
  const summary = (): void => {
    const missed = [...kinds.values()].filter(kind => kind.missed > 0)
    if (missed.length === 0 || logger === undefined) return
    const top = missed.sort((a, b) => b.missed - a.missed).slice(0, SUMMARY_KINDS)
    logger.warn('refused requests not logged in the last window, by kind (the most frequent first)', {
      windowMinutes: REFUSAL_LOG_WINDOW_MS / 60_000,
      refusals: missed.reduce((sum, kind) => sum + kind.missed, 0),
      kinds: missed.length,
      mostFrequent: top.map(kind => ({ ...kind.fields, refusals: kind.missed })),
    })
  }
  return (req, err) => {
    if (logger === undefined) return
    const at = now()
    if (at - windowStart >= REFUSAL_LOG_WINDOW_MS) {
      summary()
      windowStart = at
      logged = 0
      kinds = new RecentMap<string, Kind>(REFUSAL_KINDS_KEPT)
    }
    const key = `${err.code} ${req.headers.host ?? ''} ${req.socket.remoteAddress ?? ''}`
    const seen = kinds.get(key)
    if (seen !== undefined && seen.missed === 0) return
    const fields = { code: err.code, status: err.status, method: req.method, host: req.headers.host, client: req.socket.remoteAddress, reason: err.message }
    if (logged >= LOGGED_REFUSALS_MAX) {
      if (logged === LOGGED_REFUSALS_MAX) {
        logged++
        logger.warn(`${LOGGED_REFUSALS_MAX} kinds of refused request logged in ${REFUSAL_LOG_WINDOW_MS / 60_000} min; the rest are counted and the most frequent named when the window ends`)
      }
      kinds.set(key, { fields, missed: (seen?.missed ?? 0) + 1 })
      return
    }
    logged++
    kinds.set(key, { fields, missed: 0 })
    logger.warn('request refused', fields)
  }
}
