import { randomBytes } from 'node:crypto'
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { startDockerRegistry, type RegistryProcess } from './docker-registry.js'

/** What the proxy saw: every registry request, and every token request with its parameters. */
export interface ProxyLog {
  requests: Array<{ method: string, path: string, authorization?: string, status: number, userAgent?: string }>
  tokenRequests: Array<{ service: string | null, scope: string | null, authorization?: string }>
}

export interface FrontProxyInit {
  /** Where requests go: the docker-registry's `http://127.0.0.1:PORT`. */
  target: string
  /**
   * Bearer auth as distribution's token spec has it: a request without a valid token gets
   * 401 and a challenge naming our own /token endpoint; /token hands out tokens scoped to
   * one repository, to these basic credentials (or to anyone when `anonymous`).
   */
  auth?: { username: string, password: string, anonymous?: boolean, service: string }
}

export interface FrontProxy {
  url: string
  host: string
  log: ProxyLog
  close: () => Promise<void>
}

/**
 * A small node:http proxy in front of a real docker-registry: it counts what pull-through
 * asks of the upstream, and can demand Bearer tokens the way Docker Hub does.
 */
export async function startFrontProxy (init: FrontProxyInit): Promise<FrontProxy> {
  const log: ProxyLog = { requests: [], tokenRequests: [] }
  const tokens = new Map<string, string>()
  let base = ''
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy')
    if (url.pathname === '/token') {
      issueToken(req, res, url)
      return
    }
    const repository = /^\/v2\/(.+)\/(?:manifests|blobs)\//.exec(url.pathname)?.[1]
    if (init.auth !== undefined && url.pathname !== '/v2/') {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
      if (token === undefined || repository === undefined || tokens.get(token) !== `repository:${repository}:pull`) {
        const scope = repository === undefined ? '' : `,scope="repository:${repository}:pull"`
        log.requests.push({ method: req.method ?? 'GET', path: url.pathname, authorization: req.headers.authorization, status: 401 })
        res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${base}/token",service="${init.auth.service}"${scope}`, 'Content-Type': 'application/json' })
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }))
        return
      }
    }
    forward(req, res, url)
  })

  function issueToken (req: IncomingMessage, res: ServerResponse, url: URL): void {
    const auth = init.auth
    const scope = url.searchParams.get('scope')
    log.tokenRequests.push({ service: url.searchParams.get('service'), scope, authorization: req.headers.authorization })
    const expected = auth === undefined ? undefined : `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`
    const allowed = auth !== undefined && (req.headers.authorization === expected || (auth.anonymous === true && req.headers.authorization === undefined))
    if (!allowed || scope === null || url.searchParams.get('service') !== auth?.service) {
      res.writeHead(401, { 'Content-Type': 'application/json' })
      res.end('{"details":"incorrect username or password"}')
      return
    }
    const token = randomBytes(16).toString('hex')
    tokens.set(token, scope)
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }))
  }

  function forward (req: IncomingMessage, res: ServerResponse, url: URL): void {
    const target = new URL(url.pathname + url.search, init.target)
    const upstream = httpRequest(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (answer) => {
      log.requests.push({ method: req.method ?? 'GET', path: url.pathname, authorization: req.headers.authorization, status: answer.statusCode ?? 0, userAgent: req.headers['user-agent'] })
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => { res.destroy() })
    req.pipe(upstream)
  }

  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  base = `http://127.0.0.1:${port}`
  return {
    url: base,
    host: `127.0.0.1:${port}`,
    log,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    },
  }
}

/**
 * A describe block's docker-registry behind a counting front proxy: started before its tests in
 * `dir()/registry` (beforeAll), stopped after them. Its getters throw before the start.
 */
export function useProxiedRegistry (dir: () => string): { readonly registry: RegistryProcess, readonly front: FrontProxy } {
  let registry: RegistryProcess | undefined
  let front: FrontProxy | undefined
  beforeAll(async () => {
    registry = await startDockerRegistry(join(dir(), 'registry'))
    front = await startFrontProxy({ target: registry.url })
  })
  afterAll(async () => {
    await front?.close()
    await registry?.stop()
  })
  return {
    get registry () {
      if (registry === undefined) throw new Error('useProxiedRegistry: the registry starts in beforeAll')
      return registry
    },
    get front () {
      if (front === undefined) throw new Error('useProxiedRegistry: the proxy starts in beforeAll')
      return front
    },
  }
}
