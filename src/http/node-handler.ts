import type { IncomingMessage, ServerResponse } from 'node:http'
import { AccessDeniedError, type AccessPolicy } from './access-policy.js'
import { createRefusalLog } from './refusal-log.js'
import type { StatusResponse } from './control-types.js'
import type { Metrics } from './metrics.js'
import { answeredInFull, endRefused } from './request-body.js'
import { requestUrl } from './respond.js'
import { matchRoute } from './routes.js'
import { sendStatusPage } from './status-page.js'
import type { HttpApi, HttpLogger } from './types.js'

/** What one listener serves; a listener without a part answers 404 for its paths. */
export interface NodeHandlerComponents {
  /** The registry API's handler (createHttpApi): `/v2/…`. */
  registry?: HttpApi['handler']
  /** The control API (createControlApi): `/api/v1/…`; false for paths it does not own. */
  control?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>
  /** `/metrics`, and the byte and request counters of this listener. */
  metrics?: Metrics
  /** The status page at `/` and the read-only JSON it polls, `/status.json`. */
  status?: () => Promise<StatusResponse>
  /** `/readyz`: whether this node can do its job, with a reason per check. */
  ready?: () => Promise<ReadinessReport>
  access: AccessPolicy
  logger?: HttpLogger
}

export interface ReadinessReport {
  ready: boolean
  checks: Array<{ name: string, ok: boolean, detail: string }>
}

export interface NodeHandlerInit {
  /** The control API is on TCP here, so it takes the bearer token (a Unix socket's mode is its check). */
  controlOverTcp?: boolean
  /** Registry writes are routed (the daemon's --allow-push); each must pass the access policy's push check. */
  allowPush?: boolean
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'])
// Routes whose bodies are image bytes to or from local clients (the bytes metrics' "local").
const SERVING = new Set(['manifest', 'blob'])
const RECEIVING = new Set(['uploads', 'upload', 'manifest'])

/**
 * One of the daemon's listeners (DESIGN.md "The local HTTP API", docs/architecture.md
 * "Listeners"): any mix of the registry API, the control API, `/metrics` and the status
 * page, with `/healthz` (the process answers) on all and `/readyz` where given. Every request is counted and timed by route, method and status.
 */
export function createNodeHandler (components: NodeHandlerComponents, init: NodeHandlerInit = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const { metrics } = components
  const logRefusal = createRefusalLog(components.logger)
  return (req, res) => {
    const pathname = requestUrl(req).pathname
    const route = routeLabel(pathname)
    if (metrics !== undefined) instrument(metrics, req, res, route)
    void serve(components, init, req, res, pathname).catch((err: unknown) => {
      if (err instanceof AccessDeniedError) {
        logRefusal(req, err)
        refuse(req, res, err, pathname)
        return
      }
      components.logger?.error('request failed', { url: req.url, err })
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' })
      res.end()
    })
  }
}

async function serve (components: NodeHandlerComponents, init: NodeHandlerInit, req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
  const read = req.method === 'GET' || req.method === 'HEAD'
  const head = req.method === 'HEAD'
  if (pathname === '/healthz' && read) {
    sendBody(res, 200, 'text/plain; charset=utf-8', Buffer.from('ok'), head)
    return
  }
  if (components.ready !== undefined && pathname === '/readyz' && read) {
    const report = await components.ready()
    // One line per check, so `curl` and a probe's event both show what is wrong.
    const text = report.checks.map(c => `${c.ok ? 'ok' : 'FAIL'} ${c.name}: ${c.detail}`).join('\n') + '\n'
    sendBody(res, report.ready ? 200 : 503, 'text/plain; charset=utf-8', Buffer.from(text), head)
    return
  }
  if (components.status !== undefined && pathname === '/' && read) {
    components.access.checkHost(req)
    sendStatusPage(res, head)
    return
  }
  if (components.status !== undefined && pathname === '/status.json' && read) {
    components.access.checkHost(req)
    sendBody(res, 200, 'application/json', Buffer.from(JSON.stringify(await components.status())), head)
    return
  }
  if (components.metrics !== undefined && pathname === '/metrics' && read) {
    sendBody(res, 200, components.metrics.contentType, Buffer.from(await components.metrics.text()), head)
    return
  }
  if (components.control !== undefined && pathname.startsWith('/api/v1/')) {
    components.access.checkControl(req, init.controlOverTcp === true)
    if (await components.control(req, res)) return
  }
  if (components.registry !== undefined && pathname.startsWith('/v2')) {
    // Reads too: a page whose name rebinds to this address reads the answers as its own, every
    // image here (private ones pulled with the upstream's credentials too). containerd sends the
    // hosts.toml address, an IP or localhost.
    if (!read && init.allowPush === true) components.access.checkPush(req)
    else components.access.checkHost(req)
    components.registry(req, res)
    return
  }
  sendBody(res, 404, 'application/json', Buffer.from(JSON.stringify({ error: { code: 'NOT_FOUND', message: `nothing is served at ${pathname} on this listener` } })), head)
}

function refuse (req: IncomingMessage, res: ServerResponse, err: AccessDeniedError, pathname: string): void {
  if (res.headersSent) {
    res.end()
    return
  }
  // The registry's clients read the distribution spec's error shape; everything else ours.
  const registry = pathname.startsWith('/v2')
  const body = registry
    ? { errors: [{ code: err.status === 401 ? 'UNAUTHORIZED' : 'DENIED', message: err.message, detail: { reason: err.code } }] }
    : { error: { code: err.code, message: err.message } }
  const bytes = Buffer.from(JSON.stringify(body))
  res.writeHead(err.status, {
    'Content-Type': 'application/json',
    'Content-Length': bytes.length,
    'Cache-Control': 'no-store',
    ...(err.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="shoal"' } : {}),
  })
  endRefused(req, res, bytes)
}

function sendBody (res: ServerResponse, status: number, type: string, body: Buffer, head: boolean): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-store' })
  res.end(head ? undefined : body)
}

/** A label of few values: the registry route's kind, or what else the port serves. */
function routeLabel (pathname: string): string {
  if (pathname === '/') return 'status-page'
  if (pathname === '/status.json') return 'status'
  if (pathname === '/metrics') return 'metrics'
  if (pathname === '/healthz') return 'health'
  if (pathname === '/readyz') return 'ready'
  if (pathname.startsWith('/api/v1/')) return 'control'
  return matchRoute(pathname)?.kind ?? 'not-found'
}

function instrument (metrics: Metrics, req: IncomingMessage, res: ServerResponse, route: string): void {
  const started = performance.now()
  const method = METHODS.has(req.method ?? '') ? req.method ?? 'GET' : 'OTHER'
  // Socket counters include headers; with keep-alive one socket carries requests one after
  // another, so the difference over one request is that request's traffic.
  const socket = req.socket
  const writtenBefore = socket.bytesWritten
  const readBefore = socket.bytesRead
  res.once('close', () => {
    const status = answeredInFull(res) ? String(res.statusCode) : 'aborted'
    metrics.httpRequests.inc({ route, method, status })
    metrics.httpDuration.observe({ route, method }, (performance.now() - started) / 1000)
    if (SERVING.has(route) && method === 'GET') metrics.sentBytes.inc({ destination: 'local' }, Math.max(0, socket.bytesWritten - writtenBefore))
    if (RECEIVING.has(route) && method !== 'GET' && method !== 'HEAD') metrics.receivedBytes.inc({ source: 'local' }, Math.max(0, socket.bytesRead - readBefore))
  })
}
