import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { BlockList, isIP } from 'node:net'
import { AddressError } from './api-address.js'

/** Why a request was refused before any route saw it; `status` is the HTTP answer. */
export class AccessDeniedError extends Error {
  constructor (readonly status: 401 | 403 | 415, readonly code: string, message: string) {
    super(message)
    this.name = 'AccessDeniedError'
  }
}

export interface AccessPolicyInit {
  /** The bearer token read from the operator's token file: the control API over TCP and registry pushes take it. */
  token?: string
  /** Host names a request may be addressed to besides IP literals and `localhost` (DNS rebinding). */
  allowedHosts?: string[]
  /** CIDRs (`10.0.0.0/8`, `::1/128`) whose clients may push to the registry without the token. */
  pushNetworks?: string[]
}

/**
 * Media types no browser can send without a CORS preflight, which this daemon never grants:
 * JSON for requests, a tar for what `shoal push` streams.
 */
const CONTROL_MEDIA_TYPES = new Set(['application/json', 'application/x-tar'])

/**
 * Who may act through this daemon's HTTP listeners (DESIGN.md "Nothing acts for a
 * stranger"). A web page is the stranger that matters locally: it can send "simple"
 * cross-origin requests (text/plain POSTs) and, by DNS rebinding, same-origin ones to a
 * name it controls that resolves to 127.0.0.1. So: a request carrying `Origin` is a
 * browser's and is refused; `Host` must be an IP literal, `localhost` or a name the operator
 * listed; control requests with a body must be JSON (a preflighted type); TCP needs the token.
 */
export class AccessPolicy {
  private readonly tokenDigest: Buffer | undefined
  private readonly hosts: Set<string>
  private readonly pushNetworks: BlockList | undefined

  constructor (init: AccessPolicyInit = {}) {
    this.tokenDigest = init.token === undefined ? undefined : digest(init.token)
    this.hosts = new Set((init.allowedHosts ?? []).map(h => h.toLowerCase()))
    if (init.pushNetworks !== undefined && init.pushNetworks.length > 0) this.pushNetworks = parseNetworks(init.pushNetworks)
  }

  /** Control API requests; `overTcp` when the listener is not a Unix socket (whose file mode is the access check). */
  checkControl (req: IncomingMessage, overTcp: boolean, mediaTypes: ReadonlySet<string> = CONTROL_MEDIA_TYPES): void {
    this.checkBrowser(req)
    if (overTcp) this.requireToken(req)
    const method = req.method ?? 'GET'
    if (method !== 'GET' && method !== 'HEAD') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
      if (!mediaTypes.has(type)) {
        throw new AccessDeniedError(415, 'CONTENT_TYPE_REFUSED', `control requests must be sent as ${[...mediaTypes].join(' or ')} (got ${type === '' ? 'none' : JSON.stringify(type)}); use the shoal CLI, or set Content-Type`)
      }
    }
  }

  /** Registry writes (uploads, manifest PUTs) when pushes are allowed: the token, or a client in the allowed networks. */
  checkPush (req: IncomingMessage): void {
    this.checkBrowser(req)
    if (this.tokenDigest !== undefined && this.bearerMatches(req)) return
    const address = clientAddress(req)
    if (this.pushNetworks !== undefined && address !== undefined && this.pushNetworks.check(address.ip, address.family)) return
    throw new AccessDeniedError(401, 'PUSH_UNAUTHORIZED', this.tokenDigest !== undefined
      ? 'pushing here needs the bearer token from the daemon\'s --api-token-file (skopeo: --dest-registry-token) or a client address in --push-network'
      : `pushing here is allowed only from the networks in --push-network; ${address?.ip ?? 'this client'} is not in them`)
  }

  /** Read-only pages (status, metrics): only the DNS-rebinding check. */
  checkHost (req: IncomingMessage): void {
    const host = hostName(req.headers.host)
    if (host === undefined || isIP(host) !== 0 || host === 'localhost' || this.hosts.has(host)) return
    throw new AccessDeniedError(403, 'HOST_REFUSED', `requests addressed to ${JSON.stringify(host)} are refused (DNS rebinding); use an IP address or localhost, or start the daemon with --allowed-host ${host}`)
  }

  private checkBrowser (req: IncomingMessage): void {
    if (req.headers.origin !== undefined) throw new AccessDeniedError(403, 'ORIGIN_REFUSED', 'requests from web pages (with an Origin header) may not act through this daemon')
    this.checkHost(req)
  }

  private requireToken (req: IncomingMessage): void {
    if (this.tokenDigest === undefined) throw new AccessDeniedError(401, 'TOKEN_REQUIRED', 'this listener has no token configured; the control API over TCP needs --api-token-file')
    if (req.headers.authorization === undefined) throw new AccessDeniedError(401, 'TOKEN_REQUIRED', 'the control API over TCP needs the bearer token from the daemon\'s --api-token-file (the CLI reads it from --api-token-file or $SHOAL_API_TOKEN_FILE)')
    if (!this.bearerMatches(req)) throw new AccessDeniedError(401, 'TOKEN_INVALID', 'the bearer token does not match the daemon\'s --api-token-file')
  }

  private bearerMatches (req: IncomingMessage): boolean {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    if (match?.[1] === undefined || this.tokenDigest === undefined) return false
    // Digests first so the comparison is constant-time whatever the lengths.
    return timingSafeEqual(digest(match[1]), this.tokenDigest)
  }
}

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

function addNetwork (list: BlockList, cidr: string): void {
  const [ip = '', prefixText] = cidr.trim().split('/')
  const family = isIP(ip)
  if (family === 0) throw new AddressError(`push network ${JSON.stringify(cidr)} is not an address or CIDR; write e.g. 10.0.0.0/8 or ::1/128`)
  const type = family === 4 ? 'ipv4' : 'ipv6'
  const prefix = prefixText === undefined ? (family === 4 ? 32 : 128) : Number(prefixText)
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) throw new AddressError(`push network ${JSON.stringify(cidr)} has an invalid prefix length; write e.g. 10.0.0.0/8 or ::1/128`)
  list.addSubnet(ip, prefix, type)
}

function clientAddress (req: IncomingMessage): { ip: string, family: 'ipv4' | 'ipv6' } | undefined {
  let ip = req.socket.remoteAddress
  if (ip === undefined) return undefined
  // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped?.[1] !== undefined) ip = mapped[1]
  return { ip, family: isIP(ip) === 4 ? 'ipv4' : 'ipv6' }
}

function hostName (header: string | undefined): string | undefined {
  if (header === undefined || header === '') return undefined
  const lower = header.toLowerCase()
  if (lower.startsWith('[')) return lower.slice(1, lower.indexOf(']'))
  const colon = lower.lastIndexOf(':')
  // More than one colon without brackets is a bare IPv6 literal.
  return colon >= 0 && lower.indexOf(':') === colon ? lower.slice(0, colon) : lower
}

/** Reads CIDRs (`10.0.0.0/8`, `::1`); throws AddressError naming a bad one, so a typo stops the daemon at start. */
export function parseNetworks (networks: string[]): BlockList {
  const list = new BlockList()
  for (const cidr of networks) addNetwork(list, cidr)
  return list
}
