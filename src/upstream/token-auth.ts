import {
  DEFAULT_TOKEN_LIFETIME_S, MAX_CACHED_TOKENS, MAX_TOKEN_RESPONSE_BYTES, TOKEN_RENEW_MARGIN_MS, UPSTREAM_HEADERS_TIMEOUT_MS,
} from './constants.js'
import type { AuthChallenge } from './auth-challenge.js'
import { UpstreamUnauthorizedError, UpstreamUnavailableError } from './errors.js'
import { readLimited } from './read-limited.js'
import { abortAfter } from '../wait/index.js'
import { RecentMap } from '../recent/index.js'

export interface Credentials {
  username: string
  password: string
}

interface CachedToken {
  header: string
  expiresAt: number
}

/**
 * What an upstream request carries as `Authorization`, learnt the way Docker's client does it
 * (distribution "Token Authentication Specification"): send anonymously; on a 401 with a
 * `Bearer` challenge, GET a token from its realm for its service and scope (with basic
 * credentials when we have some), and retry; a `Basic` challenge is answered with the
 * credentials themselves. Tokens are cached per scope until shortly before they expire.
 */
export class TokenAuth {
  private readonly tokens = new RecentMap<string, CachedToken>(MAX_CACHED_TOKENS)

  constructor (private readonly credentials: Credentials | undefined, private readonly fetchImpl: typeof fetch = fetch) {}

  /** The header to send for this scope now, if one is known. */
  cached (scope: string): string | undefined {
    const token = this.tokens.get(scope)
    if (token === undefined) return undefined
    if (Date.now() < token.expiresAt) return token.header
    this.tokens.delete(scope)
    return undefined
  }

  /** Answers a challenge; the header returned is cached for `scope`. */
  async answer (challenge: AuthChallenge, scope: string, signal: AbortSignal): Promise<string> {
    if (challenge.scheme === 'basic') {
      if (this.credentials === undefined) throw new UpstreamUnauthorizedError('the upstream asks for basic credentials; set SHOAL_UPSTREAM_USER and SHOAL_UPSTREAM_PASSWORD')
      return this.remember(scope, basicHeader(this.credentials), Number.POSITIVE_INFINITY)
    }
    if (challenge.scheme !== 'bearer') throw new UpstreamUnauthorizedError(`the upstream asks for ${challenge.scheme} authentication, which shoal does not speak (Bearer and Basic only)`)
    const realm = challenge.params.realm
    if (realm === undefined) throw new UpstreamUnauthorizedError('the upstream sent a Bearer challenge without a realm')
    let url: URL
    try {
      url = new URL(realm)
    } catch {
      throw new UpstreamUnauthorizedError(`the upstream's token realm ${JSON.stringify(realm.slice(0, 200))} is not a URL`)
    }
    if (challenge.params.service !== undefined) url.searchParams.set('service', challenge.params.service)
    // The challenge's scope is what the registry wants; ours is the fallback (Docker Hub sends it).
    url.searchParams.set('scope', challenge.params.scope ?? scope)
    const headers: Record<string, string> = { Accept: 'application/json' }
    if (this.credentials !== undefined) headers.Authorization = basicHeader(this.credentials)
    let response: Response
    try {
      response = await this.fetchImpl(url, { headers, signal: abortAfter(UPSTREAM_HEADERS_TIMEOUT_MS, signal) })
    } catch (err) {
      signal.throwIfAborted()
      throw new UpstreamUnavailableError(`the upstream's token service ${url.origin} did not answer: ${(err as Error).message}`, { cause: err })
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel()
      throw new UpstreamUnauthorizedError(`the upstream's token service refused ${this.credentials === undefined ? 'an anonymous token' : `the credentials of ${this.credentials.username}`} (HTTP ${response.status})`)
    }
    if (!response.ok) {
      await response.body?.cancel()
      throw new UpstreamUnavailableError(`the upstream's token service answered HTTP ${response.status}`, { status: response.status })
    }
    const body = await readLimited(response, MAX_TOKEN_RESPONSE_BYTES, signal)
    const token = parseTokenResponse(body)
    const lifetimeMs = (token.expiresIn ?? DEFAULT_TOKEN_LIFETIME_S) * 1000
    return this.remember(scope, `Bearer ${token.token}`, Date.now() + Math.max(0, lifetimeMs - TOKEN_RENEW_MARGIN_MS))
  }

  private remember (scope: string, header: string, expiresAt: number): string {
    this.tokens.set(scope, { header, expiresAt })
    return header
  }
}

function basicHeader (credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
}

/** distribution's token response: `token` (or OAuth2's `access_token`) and an optional `expires_in`. */
function parseTokenResponse (body: Buffer): { token: string, expiresIn?: number } {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    throw new UpstreamUnauthorizedError('the upstream\'s token service did not answer with JSON')
  }
  const record = typeof value === 'object' && value !== null ? value as Record<string, unknown> : {}
  const token = typeof record.token === 'string' && record.token !== '' ? record.token : record.access_token
  if (typeof token !== 'string' || token === '') throw new UpstreamUnauthorizedError('the upstream\'s token service answered without a token')
  const expiresIn = typeof record.expires_in === 'number' && record.expires_in > 0 ? record.expires_in : undefined
  return expiresIn === undefined ? { token } : { token, expiresIn }
}
