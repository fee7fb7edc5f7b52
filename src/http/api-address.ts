import { isAbsolute, resolve } from 'node:path'
import { CodedError } from '../errors/index.js'

/** Where a listener is: a Unix socket path, or a TCP host and port. */
export type ListenAddress =
  | { kind: 'socket', path: string }
  | { kind: 'tcp', host: string, port: number }

export class AddressError extends CodedError<'ADDRESS_INVALID'> {
  constructor (message: string) {
    super('ADDRESS_INVALID', message)
    this.name = 'AddressError'
  }
}

/** sun_path is 108 bytes on Linux, with a terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107

/** How a listener's messages describe what it takes. */
export interface AddressForms {
  /** A TCP listener only (the registry, metrics): messages do not offer a socket path. */
  tcpOnly?: boolean
  /** The HOST:PORT a message shows (default 127.0.0.1:5050, the registry's). */
  example?: string
}

/**
 * Reads the forms `--api` and `$SHOAL_API` accept: `unix:PATH`, a path (anything with a
 * `/`, or ending in `.sock`), `http://HOST:PORT`, or `HOST:PORT` (`[::1]:5050` for IPv6).
 * A relative path is taken from `cwd`.
 */
export function parseListenAddress (text: string, what = 'API address', cwd = process.cwd(), forms: AddressForms = {}): ListenAddress {
  const example = forms.example ?? '127.0.0.1:5050'
  // Said only where a socket is taken: the registry and metrics listeners refuse one.
  const orSocket = forms.tcpOnly === true ? '' : ' or a socket path'
  const trimmed = text.trim()
  if (trimmed === '') throw new AddressError(`the ${what} is empty; give a socket path (e.g. /run/shoal/api.sock) or HOST:PORT (e.g. 127.0.0.1:5050)`)
  if (trimmed.startsWith('unix:') || trimmed.includes('/') && !/^https?:\/\//.test(trimmed) || trimmed.endsWith('.sock')) {
    const raw = trimmed.startsWith('unix:') ? trimmed.slice('unix:'.length) : trimmed
    const path = isAbsolute(raw) ? raw : resolve(cwd, raw)
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) throw new AddressError(`the ${what} ${path} is longer than a Unix socket path may be (${MAX_SOCKET_PATH_BYTES} bytes); choose a shorter one, e.g. /run/shoal/api.sock`)
    return { kind: 'socket', path }
  }
  const hostPort = /^https?:\/\//.test(trimmed) ? new URL(trimmed).host : trimmed
  const colon = hostPort.lastIndexOf(':')
  // `:5050` is Go's spelling of "every interface"; here the host is written out.
  if (colon === 0) throw new AddressError(`the ${what} ${JSON.stringify(text)} has no host; write 0.0.0.0${hostPort} for every interface or 127.0.0.1${hostPort} for this machine only`)
  if (colon < 0 || hostPort.endsWith(']')) throw new AddressError(`the ${what} ${JSON.stringify(text)} has no port; write HOST:PORT (e.g. ${example})${orSocket}`)
  const host = hostPort.slice(0, colon).replace(/^\[|\]$/g, '')
  const portText = hostPort.slice(colon + 1)
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port > 65535) throw new AddressError(`the ${what} ${JSON.stringify(text)} has no valid port; write HOST:PORT (e.g. ${example})${orSocket}`)
  return { kind: 'tcp', host, port }
}

/** The address as `--api` would take it back. */
export function formatListenAddress (address: ListenAddress): string {
  if (address.kind === 'socket') return address.path
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}
