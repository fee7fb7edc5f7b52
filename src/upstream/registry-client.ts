import { MAX_REDIRECTS, UPSTREAM_HEADERS_TIMEOUT_MS } from './constants.js'
import { parseChallenge } from './auth-challenge.js'
import { UpstreamNotFoundError, UpstreamUnauthorizedError, UpstreamUnavailableError } from './errors.js'
import type { TokenAuth } from './token-auth.js'

export interface RegistryRequest {
  /** Repository path on the upstream: `library/alpine`. */
  repository: string
  /** Path after `/v2/<repository>/`: `manifests/3.19`, `blobs/sha256:…`. */
  path: string
  accept?: string
  /** What the request is for, in error messages: `manifest library/alpine:3.19`. */
  what: string
  signal: AbortSignal
  /** Aborts the headers wait (the body has its own idle timeout). */
  headersTimeoutMs?: number
  method?: 'GET' | 'HEAD'
}

/**
 * Speaks HTTP to one origin registry (plain HTTP or HTTPS): adds auth, follows redirects
 * (registries send blob reads to object storage) without carrying our `Authorization` to
 * another origin, and turns statuses into typed errors: 404 → UpstreamNotFoundError,
 * 401/403 after auth → UpstreamUnauthorizedError, anything else not 2xx, a network failure
 * or a timeout → UpstreamUnavailableError. Resolves with a 2xx response whose body is unread.
 */
export class RegistryClient {
  constructor (readonly base: URL, private readonly auth: TokenAuth, private readonly fetchImpl: typeof fetch = fetch) {}

  async request (request: RegistryRequest): Promise<Response> {
    const scope = `repository:${request.repository}:pull`
    const url = new URL(`/v2/${request.repository}/${request.path}`, this.base)
    let authorization = this.auth.cached(scope)
    let response = await this.send(url, request, authorization)
    if (response.status === 401) {
      const challenge = parseChallenge(response.headers.get('www-authenticate'))
      await response.body?.cancel()
      if (challenge === undefined) throw new UpstreamUnauthorizedError(`the upstream refused ${request.what} (HTTP 401) without saying how to authenticate`)
      authorization = await this.auth.answer(challenge, scope, request.signal)
      response = await this.send(url, request, authorization)
    }
    if (response.ok) return response
    await response.body?.cancel()
    if (response.status === 404) throw new UpstreamNotFoundError(request.what)
    if (response.status === 401 || response.status === 403) throw new UpstreamUnauthorizedError(`the upstream refused ${request.what} (HTTP ${response.status}); check SHOAL_UPSTREAM_USER/SHOAL_UPSTREAM_PASSWORD`)
    throw new UpstreamUnavailableError(`the upstream answered HTTP ${response.status} for ${request.what}`, { status: response.status })
  }

  /** One request and its redirects; a 3xx to another origin goes there without our credentials. */
  private async send (start: URL, request: RegistryRequest, authorization: string | undefined): Promise<Response> {
    // A deadline for the headers only: once they are here the body may take as long as a
    // layer needs, its stalls caught by the reader's idle timeout (request.signal).
    const headersTimeout = new AbortController()
    const timer = setTimeout(() => { headersTimeout.abort(new Error('headers timeout')) }, request.headersTimeoutMs ?? UPSTREAM_HEADERS_TIMEOUT_MS)
    try {
      return await this.follow(start, request, authorization, headersTimeout.signal)
    } finally {
      clearTimeout(timer)
    }
  }

  private async follow (start: URL, request: RegistryRequest, authorization: string | undefined, headersTimeout: AbortSignal): Promise<Response> {
    const signal = AbortSignal.any([request.signal, headersTimeout])
    let url = start
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = {}
      if (request.accept !== undefined) headers.Accept = request.accept
      if (authorization !== undefined && url.origin === start.origin) headers.Authorization = authorization
      let response: Response
      try {
        response = await this.fetchImpl(url, { method: request.method ?? 'GET', headers, redirect: 'manual', signal })
      } catch (err) {
        request.signal.throwIfAborted()
        const why = headersTimeout.aborted ? 'did not answer in time' : `could not be reached (${describe(err)})`
        throw new UpstreamUnavailableError(`the upstream ${url.origin} ${why} for ${request.what}`, { cause: err })
      }
      const location = response.headers.get('location')
      if (response.status < 300 || response.status > 399 || location === null) return response
      await response.body?.cancel()
      if (hop >= MAX_REDIRECTS) throw new UpstreamUnavailableError(`the upstream redirected ${request.what} more than ${MAX_REDIRECTS} times`)
      url = new URL(location, url)
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UpstreamUnavailableError(`the upstream redirected ${request.what} to a ${url.protocol} URL`)
    }
  }
}

/** undici hides the socket error in `cause`; that is the part a person needs (ECONNREFUSED…). */
function describe (err: unknown): string {
  const cause = (err as { cause?: { code?: string, message?: string } }).cause
  return cause?.code ?? cause?.message ?? (err as Error).message
}
