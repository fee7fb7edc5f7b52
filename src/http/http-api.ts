import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { SOCKET_IDLE_TIMEOUT_MS } from './constants.js'
import { registryCodeOf } from '../errors/index.js'
import { ClientGoneError, RegistryError } from './errors.js'
import { createHttpServer, listenOn } from './listener.js'
import { createRegistry, type Registry } from './registry.js'
import { requestUrl, sendError, type RequestContext } from './respond.js'
import { dispatch, matchRoute } from './routes.js'
import type { HttpApi, HttpApiComponents, HttpApiInit } from './types.js'

/**
 * The local HTTP API (DESIGN.md "The local HTTP API"): the OCI distribution API under
 * `/v2/`, and `/healthz`. `handler` can be mounted in the daemon's server; `listen` starts
 * one of our own.
 */
export function createHttpApi (components: HttpApiComponents, init: HttpApiInit = {}): HttpApi {
  return new RegistryApi(createRegistry(components, init))
}

class RegistryApi implements HttpApi {
  private server: Server | undefined
  private closing = false
  private readonly inflight = new Map<AbortController, Promise<void>>()

  constructor (private readonly registry: Registry) {}

  readonly handler = (req: IncomingMessage, res: ServerResponse): void => {
    const controller = new AbortController()
    // A request's 'close' fires once its body is read (Node ≥ 16), not only on a disconnect;
    // the response closing before it finished is what says the client went away.
    res.on('close', () => { if (!res.writableFinished) controller.abort(new ClientGoneError()) })
    // Set here rather than on our own server, so it holds in the daemon's server too: a
    // socket silent both ways this long is a stalled client, and it must not hold a stream.
    res.setTimeout(SOCKET_IDLE_TIMEOUT_MS, () => { res.destroy() })
    const done = this.handle(req, res, controller.signal).finally(() => { this.inflight.delete(controller) })
    this.inflight.set(controller, done)
  }

  async listen (host: string, port: number): Promise<{ host: string, port: number }> {
    const server = createHttpServer(this.handler)
    const bound = await listenOn(server, { kind: 'tcp', host, port })
    this.server = server
    return { host, port: bound.kind === 'tcp' ? bound.port : port }
  }

  /**
   * Close order: stop accepting, abort every request in flight and wait for its handler to
   * return (so nothing touches the store after we return: the daemon closes it next), drop
   * upload sessions with their staging files, then close the sockets.
   */
  async close (): Promise<void> {
    this.closing = true
    const server = this.server
    const closed = server === undefined ? Promise.resolve() : new Promise<void>(resolve => { server.close(() => { resolve() }) })
    for (const controller of this.inflight.keys()) controller.abort(new RegistryError('UNAVAILABLE', 'the API is closing'))
    await Promise.allSettled(this.inflight.values())
    await this.registry.uploads.close()
    server?.closeAllConnections()
    await closed
  }

  private async handle (req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const url = requestUrl(req)
    const ctx: RequestContext = { req, res, url, signal, head: req.method === 'HEAD' }
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0')
    try {
      if (this.closing) throw new RegistryError('UNAVAILABLE', 'the API is closing')
      const route = matchRoute(url.pathname)
      if (route === undefined) throw new RegistryError('NOT_FOUND', `${url.pathname.slice(0, 200)} is not part of this API (the registry is under /v2/)`)
      await dispatch(ctx, this.registry, route)
    } catch (err) {
      this.fail(ctx, err)
    }
  }

  /** Every failure becomes the spec's JSON error, or a cut connection once a body has started. */
  private fail (ctx: RequestContext, err: unknown): void {
    const { res } = ctx
    if (ctx.signal.aborted && !(err instanceof RegistryError)) {
      res.destroy()
      return
    }
    const error = err instanceof RegistryError ? err : this.unexpected(ctx, err)
    if (res.headersSent) {
      // The status line is gone: the only honest signal left is a truncated body.
      this.registry.logger?.warn('response cut after it started', { url: ctx.req.url, err })
      res.destroy()
      return
    }
    sendError(ctx, error)
  }

  /**
   * An error from below the API (the store, the swarm, the upstream) answers with the spec code
   * the catalogue names for its code (a full disk is UNAVAILABLE, so a client tries elsewhere);
   * only what the catalogue does not map is an UNKNOWN 500, logged as a fault.
   */
  private unexpected (ctx: RequestContext, err: unknown): RegistryError {
    const code = (err as { code?: unknown } | undefined)?.code
    const spec = registryCodeOf(code)
    if (spec === 'UNKNOWN') this.registry.logger?.error('request failed', { method: ctx.req.method, url: ctx.req.url, err })
    else this.registry.logger?.warn('request failed', { method: ctx.req.method, url: ctx.req.url, code, err })
    const message = err instanceof Error ? err.message : String(err)
    return new RegistryError(spec, message, { detail: { code }, cause: err })
  }
}
