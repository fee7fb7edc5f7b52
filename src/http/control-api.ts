import type { IncomingMessage, ServerResponse } from 'node:http'
import { ControlError, pathRef, sendError, sendJson } from './control-request.js'
import { CONTROL_ROUTES, type ControlRoute } from './control-routes.js'
import type { ControlApiComponents, ControlApiInit } from './control-types.js'
import { requestUrl } from './respond.js'

/**
 * The JSON control API under `/api/v1/` (loopback by default): what the CLI uses when a
 * daemon runs. Each request goes to its route in CONTROL_ROUTES (`METHOD /path`, or a
 * prefix route for `…/ID`); a method or path no route has is NOT_FOUND.
 * Returns false for paths it does not own, so the caller can try others.
 */
export function createControlApi (components: ControlApiComponents, init: ControlApiInit = {}): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const exact = new Map(CONTROL_ROUTES.filter(r => r.prefix !== true).map(r => [`${r.method} ${r.path}`, r]))
  const prefixes = CONTROL_ROUTES.filter(r => r.prefix === true)
  const context = { components, init }
  return async (req, res) => {
    const url = requestUrl(req)
    if (!url.pathname.startsWith('/api/v1/')) return false
    const route = `${req.method ?? 'GET'} ${url.pathname.slice('/api/v1'.length)}`
    const controller = new AbortController()
    res.on('close', () => { if (!res.writableFinished) controller.abort(new Error('client went away')) })
    try {
      const found: ControlRoute | undefined = exact.get(route) ?? prefixes.find(r => route.startsWith(`${r.method} ${r.path}`))
      if (found === undefined) throw new ControlError('NOT_FOUND', `no control route ${route}; see docs/architecture.md for the API`)
      const rest = found.prefix === true ? pathRef(route, `${found.method} ${found.path}`) : ''
      const request = { req, res, url, rest, signal: controller.signal }
      if ('json' in found) sendJson(res, 200, await found.json(request, context))
      else await found.stream(request, context)
    } catch (err) {
      sendError(res, err)
    }
    return true
  }
}
