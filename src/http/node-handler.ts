import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Metrics } from './metrics.js'
import { matchRoute } from './routes.js'
import { sendStatusPage } from './status-page.js'
import type { HttpApi, HttpLogger } from './types.js'

export interface NodeHandlerComponents {
  /** The registry API's handler (createHttpApi): `/v2/…` and `/healthz`. */
  registry: HttpApi['handler']
  /** The control API (createControlApi): `/api/v1/…`; false for paths it does not own. */
  control: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>
  metrics?: Metrics
  logger?: HttpLogger
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'])
// Routes whose bodies are image bytes to or from local clients (the bytes metrics' "local").
const SERVING = new Set(['manifest', 'blob'])
const RECEIVING = new Set(['uploads', 'upload', 'manifest'])

/**
 * The daemon's one HTTP port: the status page at `/`, `/metrics`, the control API under
 * `/api/v1/`, and the registry API for everything else (its 404s are the spec's JSON).
 * Every request is counted and timed by route, method and status.
 */
export function createNodeHandler (components: NodeHandlerComponents): (req: IncomingMessage, res: ServerResponse) => void {
  const { metrics } = components
  return (req, res) => {
    const pathname = pathOf(req)
    const route = routeLabel(pathname)
    if (metrics !== undefined) instrument(metrics, req, res, route)
    void serve(components, req, res, pathname).catch((err: unknown) => {
      components.logger?.error('request failed', { url: req.url, err })
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' })
      res.end()
    })
  }
}

async function serve (components: NodeHandlerComponents, req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
  const read = req.method === 'GET' || req.method === 'HEAD'
  if (pathname === '/' && read) {
    sendStatusPage(res, req.method === 'HEAD')
    return
  }
  if (pathname === '/metrics' && read && components.metrics !== undefined) {
    const body = Buffer.from(await components.metrics.text())
    res.writeHead(200, { 'Content-Type': components.metrics.contentType, 'Content-Length': body.length, 'Cache-Control': 'no-store' })
    res.end(req.method === 'HEAD' ? undefined : body)
    return
  }
  if (await components.control(req, res)) return
  components.registry(req, res)
}

/** A label of few values: the registry route's kind, or what else the port serves. */
function routeLabel (pathname: string): string {
  if (pathname === '/') return 'status-page'
  if (pathname === '/metrics') return 'metrics'
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
    const status = res.writableFinished ? String(res.statusCode) : 'aborted'
    metrics.httpRequests.inc({ route, method, status })
    metrics.httpDuration.observe({ route, method }, (performance.now() - started) / 1000)
    if (SERVING.has(route) && method === 'GET') metrics.sentBytes.inc({ destination: 'local' }, Math.max(0, socket.bytesWritten - writtenBefore))
    if (RECEIVING.has(route) && method !== 'GET' && method !== 'HEAD') metrics.receivedBytes.inc({ source: 'local' }, Math.max(0, socket.bytesRead - readBefore))
  })
}

function pathOf (req: IncomingMessage): string {
  try {
    return new URL(`http://localhost${req.url ?? '/'}`).pathname
  } catch {
    return '/invalid-request-target'
  }
}
