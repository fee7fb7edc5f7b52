import { request } from 'node:http'
import type { CommandContext } from './context.js'

/** The default API address, where `shoal daemon` listens unless told otherwise. */
export const DEFAULT_API_ADDRESS = '127.0.0.1:5050'
/** A local daemon answers in milliseconds; this only bounds a hung one. */
const PROBE_TIMEOUT_MS = 1_000

export class DaemonError extends Error {
  constructor (readonly code: string, message: string, readonly status: number) {
    super(message)
    this.name = 'DaemonError'
  }
}

/**
 * The daemon to talk to, if any: one named by `--api`/`$SHOAL_API` must answer; without
 * one, the default address is tried unless `--data` names a store to work on directly.
 */
export async function findDaemon (context: CommandContext, explicitData: boolean): Promise<string | undefined> {
  if (context.api !== undefined) return context.api
  if (explicitData) return undefined
  return await probe(DEFAULT_API_ADDRESS) ? DEFAULT_API_ADDRESS : undefined
}

async function probe (api: string): Promise<boolean> {
  try {
    await requestJson(api, 'GET', '/api/v1/status', undefined, AbortSignal.timeout(PROBE_TIMEOUT_MS))
    return true
  } catch {
    return false
  }
}

export async function requestJson<T> (api: string, method: string, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const response = await send(api, method, path, body, signal)
  const text = await readAll(response.stream)
  const value = text === '' ? undefined : JSON.parse(text) as unknown
  if (response.status >= 400) {
    const error = (value as { error?: { code?: string, message?: string } } | undefined)?.error
    throw new DaemonError(error?.code ?? 'DAEMON_ERROR', error?.message ?? `the daemon answered ${response.status}`, response.status)
  }
  return value as T
}

/** Sends a request and yields each line of an NDJSON answer as it arrives. */
export async function * requestLines<T> (api: string, path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<T> {
  const response = await send(api, 'POST', path, body, signal)
  if (response.status >= 400) {
    await requestJsonError(response)
  }
  let buffered = ''
  for await (const piece of response.stream) {
    buffered += (piece as Buffer).toString()
    let newline
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      if (line.trim() !== '') yield JSON.parse(line) as T
    }
  }
}

async function requestJsonError (response: { status: number, stream: NodeJS.ReadableStream }): Promise<never> {
  const text = await readAll(response.stream)
  let error: { code?: string, message?: string } | undefined
  try { error = (JSON.parse(text) as { error?: typeof error }).error } catch { error = undefined }
  throw new DaemonError(error?.code ?? 'DAEMON_ERROR', error?.message ?? `the daemon answered ${response.status}`, response.status)
}

async function send (api: string, method: string, path: string, body: unknown, signal?: AbortSignal): Promise<{ status: number, stream: NodeJS.ReadableStream }> {
  const colon = api.lastIndexOf(':')
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
  return await new Promise((resolve, reject) => {
    const req = request({
      host: api.slice(0, colon).replace(/^\[|\]$/g, ''),
      port: Number(api.slice(colon + 1)),
      method,
      path,
      signal,
      // One request per command: a kept-alive socket would hold the process open after it.
      agent: false,
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': payload.length },
    }, res => { resolve({ status: res.statusCode ?? 0, stream: res }) })
    req.on('error', err => { reject(new DaemonError('DAEMON_UNREACHABLE', `no shoal daemon answers at ${api} (${err.message}); start one with \`shoal daemon\` or drop --api`, 0)) })
    req.end(payload)
  })
}

async function readAll (stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = []
  for await (const piece of stream) parts.push(piece as Buffer)
  return Buffer.concat(parts).toString()
}
