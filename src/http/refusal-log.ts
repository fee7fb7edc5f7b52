import type { IncomingMessage } from 'node:http'
import type { AccessDeniedError } from './access-policy.js'
import type { HttpLogger } from './types.js'

/**
 * How many distinct refusals (code and Host, or code and client address) a listener logs.
 * Refusals are what a stranger can cause at will (a web page, a scanner), so the log takes the
 * first few and then says it stops; the operator's own mistake is among the first.
 */
export const LOGGED_REFUSALS_MAX = 16

/**
 * Logs a refused request once per kind: containerd answers a 403 or 401 from its mirror by
 * going to the next host, so a mirror reached by a name missing from --allowed-host (or a push
 * from outside --push-network) showed nothing in the daemon's log while every pull went past it.
 */
export function createRefusalLog (logger: HttpLogger | undefined): (req: IncomingMessage, err: AccessDeniedError) => void {
  const seen = new Set<string>()
  let stopped = false
  return (req, err) => {
    if (logger === undefined || stopped) return
    const key = `${err.code} ${req.headers.host ?? ''} ${req.socket.remoteAddress ?? ''}`
    if (seen.has(key)) return
    if (seen.size >= LOGGED_REFUSALS_MAX) {
      stopped = true
      logger.warn(`${LOGGED_REFUSALS_MAX} kinds of refused request logged; further ones are not`)
      return
    }
    seen.add(key)
    logger.warn('request refused', { code: err.code, status: err.status, method: req.method, host: req.headers.host, client: req.socket.remoteAddress, reason: err.message })
  }
}
