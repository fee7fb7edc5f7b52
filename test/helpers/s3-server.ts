import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer, request as httpRequest, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createInterface } from 'node:readline'
import { sigV4Error } from './sigv4-check.js'

/**
 * A real S3-protocol server on loopback: s3rver (npm) in its own process, storing in `dir`,
 * with the buckets named. Credentials are s3rver's fixed S3RVER/S3RVER.
 */
export interface S3Server {
  endpoint: string
  /** Environment for shoal and the AWS CLI to reach it, isolated from any ~/.aws of the machine. */
  env: Record<string, string>
  stop: () => Promise<void>
}

const SERVER_SCRIPT = `
const S3rver = require('s3rver')
const buckets = JSON.parse(process.argv[2])
const server = new S3rver({ address: '127.0.0.1', port: 0, directory: process.argv[1], silent: true, configureBuckets: buckets.map(name => ({ name })) })
server.run().then(address => { process.stdout.write(JSON.stringify({ port: address.port }) + '\\n') }, err => { console.error(err); process.exit(1) })
`

export async function startS3Server (dir: string, buckets: string[], options: { checkSignatures?: boolean } = {}): Promise<S3Server> {
  const child = spawn(process.execPath, ['-e', SERVER_SCRIPT, dir, JSON.stringify(buckets)], { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd() })
  const port = await firstLineJson(child)
  // s3rver takes any V4 signature: in front of it, a gate that checks them as S3 does (a
  // benchmark goes without: the gate holds each body before passing it on).
  const auth = options.checkSignatures === false ? undefined : await startS3Gate(`http://127.0.0.1:${port}`, () => undefined, { secrets: { S3RVER: 'S3RVER' } })
  const endpoint = auth?.endpoint ?? `http://127.0.0.1:${port}`
  return {
    endpoint,
    env: s3Env(endpoint),
    stop: async () => {
      await auth?.close()
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await once(child, 'exit')
      }
    },
  }
}

/** What shoal, snapdir's s3 store and the AWS CLI need to reach `endpoint` and nothing else. */
export function s3Env (endpoint: string): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: endpoint,
    SNAPDIR_S3_STORE_ENDPOINT_URL: endpoint,
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
    GS_ACCESS_KEY_ID: 'S3RVER',
    GS_SECRET_ACCESS_KEY: 'S3RVER',
    SHOAL_GS_ENDPOINT_URL: endpoint,
    BOTO_CONFIG: '/nonexistent/boto',
  }
}

async function firstLineJson (child: ChildProcess): Promise<number> {
  const lines = createInterface({ input: child.stdout! })
  const exited = once(child, 'exit').then(([code]) => { throw new Error(`s3rver exited with ${String(code)} before listening`) })
  const first = (async () => {
    for await (const line of lines) return (JSON.parse(line) as { port: number }).port
    throw new Error('s3rver printed nothing')
  })()
  return await Promise.race([first, exited])
}

/** One request that passed the gate. */
export interface GateRequest { method: string, url: string, status: number }

export interface S3Gate {
  endpoint: string
  requests: GateRequest[]
  /** Resolves when a request matching `match` has been answered `count` times in total. */
  answered: (match: (r: GateRequest) => boolean, count: number) => Promise<void>
  close: () => Promise<void>
}

/**
 * A relay in front of an S3 server that records every request with its status and can refuse
 * some with an answer of its own (`refuse` returns a status, e.g. 503 to play a throttled
 * endpoint), as a real service does, without passing them on, or hold them unanswered.
 */
export async function startS3Gate (target: string, refuse: (r: { method: string, url: string }) => number | 'hold' | undefined = () => undefined, options: { secrets?: Record<string, string> } = {}): Promise<S3Gate> {
  const upstream = new URL(target)
  const requests: GateRequest[] = []
  const waiters: Array<{ match: (r: GateRequest) => boolean, count: number, resolve: () => void }> = []
  const record = (entry: GateRequest): void => {
    requests.push(entry)
    for (const waiter of [...waiters]) {
      if (requests.filter(waiter.match).length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve()
      }
    }
  }
  const answer = (res: ServerResponse, entry: { method: string, url: string }, status: number, code: string): void => {
    res.writeHead(status, { 'content-type': 'application/xml' })
    res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>refused by the test gate</Message></Error>`)
    record({ ...entry, status })
  }
  const server = createServer((req, res) => {
    const method = req.method ?? ''
    const url = req.url ?? ''
    const refused = refuse({ method, url })
    // Held: taken in and never answered, as a request in flight when its sender is killed.
    if (refused === 'hold') return
    if (refused !== undefined) {
      req.resume()
      answer(res, { method, url }, refused, refused === 503 ? 'SlowDown' : 'InternalError')
      return
    }
    const forward = (body: Buffer | undefined): void => {
      const proxied = httpRequest({ host: upstream.hostname, port: upstream.port, method, path: url, headers: req.headers, agent: false }, response => {
        res.writeHead(response.statusCode ?? 502, response.headers)
        response.pipe(res)
        response.on('end', () => { record({ method, url, status: response.statusCode ?? 0 }) })
      })
      proxied.on('error', () => { res.destroy() })
      if (body !== undefined) proxied.end(body)
      else req.pipe(proxied)
    }
    const secrets = options.secrets
    if (secrets === undefined) {
      forward(undefined)
      return
    }
    // Checking the payload's signed digest needs the whole body first (parts are a few MiB).
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => { chunks.push(chunk) })
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      if (req.headers['x-amz-security-token'] === 'EXPIRED') {
        answer(res, { method, url }, 400, 'ExpiredToken')
        return
      }
      const error = sigV4Error(method, url, req.headers, body, secrets)
      if (error !== undefined) answer(res, { method, url }, error === 'XAmzContentSHA256Mismatch' ? 400 : 403, error)
      else forward(body)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    answered: async (match, count) => {
      if (requests.filter(match).length >= count) return
      await new Promise<void>(resolve => { waiters.push({ match, count, resolve }) })
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    },
  }
}
