import type { IncomingMessage, ServerResponse } from 'node:http'
import { CodedError, describeError } from '../errors/index.js'
import { BODY_IDLE_TIMEOUT_MS } from './constants.js'
import { endRefused, readBody } from './request-body.js'
import { writeJsonHead } from './respond.js'

/** Control requests are small JSON documents; anything larger is refused unread. */
const MAX_CONTROL_BODY_BYTES = 64 * 1024

/** A request the control API refuses itself; its status comes from the catalogue. */
export class ControlError extends CodedError {
  override name = 'ControlError'
}

/** One control request as a route's handler sees it. */
export interface ControlRequest {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  /** For a route that ends in an ID or ref (`GET /bundles/…`): that part, percent-decoded. */
  rest: string
  /** Aborted when the client goes away before the answer is complete. */
  signal: AbortSignal
}

/** The bundle ID or ref that ends `route` after `prefix`, percent-decoded; a broken escape is the caller's error. */
export function pathRef (route: string, prefix: string): string {
  const encoded = route.slice(prefix.length)
  try {
    return decodeURIComponent(encoded)
  } catch {
    throw new ControlError('REF_INVALID', `${JSON.stringify(encoded)} has a broken percent-escape: encode the ID or ref with encodeURIComponent (the shoal CLI does)`)
  }
}

/** A request that named a path for the daemon to act on: refused, whatever the path (nothing is opened). */
export function pathRefused (route: string, what: string): ControlError {
  return new ControlError('PATH_NOT_ACCEPTED', `the control API takes no paths (${route}): ${what}`)
}

export function mediaType (req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
}

export async function readJson (req: IncomingMessage, signal: AbortSignal): Promise<Record<string, unknown>> {
  if (mediaType(req) !== 'application/json') throw new ControlError('CONTENT_TYPE_REFUSED', 'this control request takes a JSON body (Content-Type: application/json)')
  // The registry's body reader: a declared length over the limit is refused unread, and a body
  // that stalls is cut after BODY_IDLE_TIMEOUT_MS rather than holding the request.
  const bytes = await readBody(req, {
    maxBytes: MAX_CONTROL_BODY_BYTES,
    idleTimeoutMs: BODY_IDLE_TIMEOUT_MS,
    signal,
    tooLarge: () => new ControlError('BODY_TOO_LARGE', `control requests are at most ${MAX_CONTROL_BODY_BYTES} bytes`),
  })
  if (bytes.length === 0) return {}
  try {
    const value = JSON.parse(bytes.toString()) as unknown
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object')
    return value as Record<string, unknown>
  } catch {
    throw new ControlError('BODY_INVALID', 'the request body must be a JSON object')
  }
}

export function optionalString (body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw new ControlError('BODY_INVALID', `the field ${JSON.stringify(name)} must be a string`)
  return value
}

export function stringField (body: Record<string, unknown>, name: string): string {
  const value = body[name]
  if (typeof value !== 'string' || value === '') throw new ControlError('BODY_INVALID', `the request needs a string field ${JSON.stringify(name)}`)
  return value
}

/** Control answers are the node's state now: never to be reused from a cache. */
const NO_STORE = { 'Cache-Control': 'no-store' }

export function sendJson (res: ServerResponse, status: number, value: unknown): void {
  res.end(writeJsonHead(res, status, value, NO_STORE))
}

/** Status and code from the one catalogue (src/errors), as the CLI's exit codes are. */
export function sendError (res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    // A stream cut short must not look complete (a tar ending at a block boundary would):
    // destroying the response makes the client see the chunked body end without its terminator.
    res.destroy(err instanceof Error ? err : new Error(String(err)))
    return
  }
  const { code, message, status } = describeError(err)
  endRefused(res.req, res, writeJsonHead(res, status, { error: { code, message } }, NO_STORE))
}
