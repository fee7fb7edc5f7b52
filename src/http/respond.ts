import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RegistryError } from './errors.js'
import { endRefused } from './request-body.js'
import type { RepositoryName } from './names.js'

/** One request as the route handlers see it. */
export interface RequestContext {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  /** Aborted when the client goes away or the API closes. */
  signal: AbortSignal
  /** HEAD: same status and headers as GET, no body (RFC 9110 §9.3.2). */
  head: boolean
}

export type Headers = Record<string, string | number>

/** The request target as a URL; prefixing the origin keeps `//x` a path rather than a host. */
export function requestUrl (req: IncomingMessage): URL {
  try {
    return new URL(`http://localhost${req.url ?? '/'}`)
  } catch {
    return new URL('http://localhost/invalid-request-target')
  }
}

export function sendJson (ctx: RequestContext, status: number, body: unknown, headers: Headers = {}): void {
  ctx.res.end(writeJsonHead(ctx.res, status, body, headers, ctx.head))
}

/** Writes the head of a JSON answer (the registry's and the control API's); returns its body, none for HEAD. */
export function writeJsonHead (res: ServerResponse, status: number, body: unknown, headers: Headers = {}, head = false): Buffer | undefined {
  const bytes = Buffer.from(JSON.stringify(body))
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': bytes.length })
  return head ? undefined : bytes
}

export function sendEmpty (ctx: RequestContext, status: number, headers: Headers = {}): void {
  ctx.res.writeHead(status, { ...headers, 'Content-Length': 0 })
  ctx.res.end()
}

export function sendBytes (ctx: RequestContext, status: number, bytes: Buffer, headers: Headers): void {
  ctx.res.writeHead(status, { ...headers, 'Content-Length': bytes.length })
  ctx.res.end(ctx.head ? undefined : bytes)
}

/** The spec's JSON error; a request body not taken is drained (bounded) so the client reads it. */
export function sendError (ctx: RequestContext, err: RegistryError): void {
  endRefused(ctx.req, ctx.res, writeJsonHead(ctx.res, err.status, err.toBody(), err.headers, ctx.head))
}

/** containerd sent `?ns=`; DESIGN.md asks us to echo it as `OCI-Namespace`. */
export function namespaceHeader (name: RepositoryName): Headers {
  return name.namespace === undefined ? {} : { 'OCI-Namespace': name.namespace }
}

