import { readFile } from 'node:fs/promises'
import { request, type IncomingMessage } from 'node:http'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { formatListenAddress, parseListenAddress, type ListenAddress } from '../http/index.js'
import { API_SOCKET_NAME, envOf, flagOf, settingLabel, settingOf } from '../settings/index.js'
import { abortAfter } from '../wait/index.js'

/** The CLI's global --api-token-file is the daemon's setting of that name. */
const TOKEN_FILE = settingOf('apiTokenFile')
/** A local daemon answers in milliseconds; this only bounds a hung one. */
const PROBE_TIMEOUT_MS = 1_000

export class DaemonError extends Error {
  constructor (readonly code: string, message: string, readonly status: number) {
    super(message)
    this.name = 'DaemonError'
  }
}

/** A daemon's control API: where it is, and the bearer token TCP needs. */
export interface DaemonApi {
  address: ListenAddress
  token?: string
}

/**
 * The daemon to talk to, if any: one named by `--api`/`$SHOAL_API` must answer; without
 * one, the socket in the data directory is tried (a daemon holds that store's lock, so
 * going through it is the only way to use the store while it runs).
 */
/**
 * Where deploy/shoal.service puts the control socket (outside the data directory, which the
 * unit's dynamic user owns): the hint for a person whose `shoal ls` found no daemon at
 * DATA/api.sock. test/cli/no-daemon.test.ts reads the unit's ExecStart to keep the two agreed.
 */
export const UNIT_API_SOCKET = '/run/shoal/api.sock'

/** Said where a command found no daemon: how to name one that runs with its socket elsewhere. */
export const NAME_THE_DAEMON = `name a running daemon's control API with --api or $SHOAL_API (the systemd unit's: shoal --api ${UNIT_API_SOCKET} …)`

/** Why a command that needs the daemon stops when none answered where findDaemon looked. */
export function noDaemonMessage (what: string, dataDir: string): string {
  return `${what} needs a running daemon (\`shoal daemon\`) and none answers at ${join(dataDir, API_SOCKET_NAME)}; ${NAME_THE_DAEMON}`
}

export async function findDaemon (context: { api: string | undefined, apiTokenFile: string | undefined, dataDir: string }): Promise<DaemonApi | undefined> {
  if (context.api !== undefined) {
    let address: ListenAddress
    try {
      address = parseListenAddress(context.api, `API address (${settingLabel('api')})`)
    } catch (err) {
      throw new DaemonError('API_ADDRESS_INVALID', (err as Error).message, 0)
    }
    if (address.kind === 'socket') return { address }
    if (context.apiTokenFile === undefined) {
      throw new DaemonError('TOKEN_REQUIRED', `the control API at ${formatListenAddress(address)} is TCP, which needs the daemon's token: give ${flagOf(TOKEN_FILE)} FILE or $${envOf(TOKEN_FILE)} (or use its Unix socket)`, 0)
    }
    return { address, token: await readToken(context.apiTokenFile) }
  }
  const local: DaemonApi = { address: { kind: 'socket', path: join(context.dataDir, API_SOCKET_NAME) } }
  return await probe(local) ? local : undefined
}

async function readToken (path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim()
  } catch (err) {
    throw new DaemonError('TOKEN_UNREADABLE', `cannot read the API token file ${path} (${settingLabel('apiTokenFile')}): ${(err as Error).message}`, 0)
  }
}

async function probe (api: DaemonApi): Promise<boolean> {
  try {
    await requestJson(api, 'GET', '/api/v1/status', undefined, abortAfter(PROBE_TIMEOUT_MS))
    return true
  } catch {
    return false
  }
}

export async function requestJson<T> (api: DaemonApi, method: string, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const response = await send(api, method, path, jsonBody(body), signal)
  const text = await readAll(response)
  if ((response.statusCode ?? 0) >= 400) throw errorOf(response.statusCode ?? 0, text)
  return (text === '' ? undefined : JSON.parse(text)) as T
}

/** Sends a request and yields each line of an NDJSON answer as it arrives. */
export async function * requestLines<T> (api: DaemonApi, path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<T> {
  const response = await send(api, 'POST', path, jsonBody(body), signal)
  if ((response.statusCode ?? 0) >= 400) throw errorOf(response.statusCode ?? 0, await readAll(response))
  let buffered = ''
  for await (const piece of response) {
    buffered += (piece as Buffer).toString()
    let newline
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      if (line.trim() !== '') yield JSON.parse(line) as T
    }
  }
}

/** A request body: bytes, or a stream sent as it is read (chunked), with its media type. */
export interface RequestBody {
  type: string
  bytes?: Buffer
  stream?: Readable
}

function jsonBody (body: unknown): RequestBody | undefined {
  return body === undefined ? undefined : { type: 'application/json', bytes: Buffer.from(JSON.stringify(body)) }
}

function errorOf (status: number, text: string): DaemonError {
  let error: { code?: string, message?: string } | undefined
  try { error = (JSON.parse(text) as { error?: typeof error }).error } catch { error = undefined }
  return new DaemonError(error?.code ?? 'DAEMON_ERROR', error?.message ?? `the daemon answered ${status}`, status)
}

/**
 * Sends one request; the answer's body is left to the caller to read. A streamed body that
 * fails rejects with the stream's error (the request ends, so the daemon sees a cut body and
 * keeps nothing).
 */
export async function send (api: DaemonApi, method: string, path: string, body: RequestBody | undefined, signal?: AbortSignal): Promise<IncomingMessage> {
  const where = api.address.kind === 'socket' ? { socketPath: api.address.path } : { host: api.address.host, port: api.address.port }
  const headers: Record<string, string | number> = {}
  if (api.token !== undefined) headers.authorization = `Bearer ${api.token}`
  if (body !== undefined) headers['content-type'] = body.type
  if (body?.bytes !== undefined) headers['content-length'] = body.bytes.length
  const named = formatListenAddress(api.address)
  return await new Promise((resolve, reject) => {
    let connected = false
    let answered = false
    const req = request({
      ...where,
      method,
      path,
      signal,
      // One request per command: a kept-alive socket would hold the process open after it.
      agent: false,
      headers,
    }, response => {
      answered = true
      if ((response.statusCode ?? 0) >= 400 && body?.stream !== undefined && !req.writableEnded) {
        // Refused while we still send (over the quota, say): stop sending and close our side
        // (RFC 9112 §9.3), so the daemon stops reading at once and the answer is read here
        // without more of our writes meeting a connection the daemon is closing.
        body.stream.unpipe(req)
        req.socket?.end()
      }
      resolve(response)
    })
    req.once('socket', socket => {
      if (socket.connecting) socket.once('connect', () => { connected = true })
      else connected = true
    })
    req.on('error', err => {
      body?.stream?.destroy()
      if (signal?.aborted === true) reject(signal.reason)
      else if (connected) reject(new DaemonError('DAEMON_CONNECTION_LOST', `the daemon at ${named} closed the connection before its answer was read (${err.message}); if it refused the request, its log says why`, 0))
      else reject(new DaemonError('DAEMON_UNREACHABLE', `no shoal daemon answers at ${named} (${err.message}); start one with \`shoal daemon\` or drop --api`, 0))
    })
    if (body?.stream !== undefined) {
      const stream = body.stream
      // Once answered, the answer says what happened; a source failing after it ends nothing.
      stream.on('error', err => {
        if (answered) return
        reject(err)
        req.destroy(err)
      })
      stream.pipe(req)
    } else {
      req.end(body?.bytes)
    }
  })
}

async function readAll (stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = []
  for await (const piece of stream) parts.push(piece as Buffer)
  return Buffer.concat(parts).toString()
}
