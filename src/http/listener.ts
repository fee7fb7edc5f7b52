import { chmod, chown, lstat, readFile, unlink } from 'node:fs/promises'
import { createServer, type RequestListener, type Server } from 'node:http'
import { connect } from 'node:net'
import { AddressError, type ListenAddress } from './api-address.js'

/** Owner and group may connect; nobody else (the socket's mode is the control API's access check). */
const SOCKET_MODE = 0o660
/** The group given the socket when it exists, so operators can be let in by group membership. */
const SOCKET_GROUP = 'shoal'
/** A live daemon accepts a connection at once; this only bounds a wedged one. */
const SOCKET_PROBE_TIMEOUT_MS = 1_000

export interface ListenerLogger {
  warn: (message: string, fields?: Record<string, unknown>) => void
}

/**
 * The HTTP server every listener runs (the daemon's registry, metrics and control API; HttpApi.listen).
 * No whole-request deadline: a multi-GiB layer may take long on an edge link. Stalls are caught
 * instead: body reads and chunk waits have idle timeouts, and idle sockets close.
 */
export function createHttpServer (handler: RequestListener): Server {
  return createServer({ requestTimeout: 0 }, handler)
}

/**
 * Starts `server` on a TCP address or a Unix socket and returns where it listens (with the
 * real port when 0 was asked for). A socket file left by a daemon that died is replaced; one
 * a live daemon answers on is not.
 */
export async function listenOn (server: Server, address: ListenAddress, logger?: ListenerLogger): Promise<ListenAddress> {
  if (address.kind === 'tcp') {
    await listening(server, () => server.listen(address.port, address.host))
    const bound = server.address()
    return { kind: 'tcp', host: address.host, port: typeof bound === 'object' && bound !== null ? bound.port : address.port }
  }
  await clearStaleSocket(address.path)
  await listening(server, () => server.listen(address.path))
  await chmod(address.path, SOCKET_MODE)
  const gid = await groupId(SOCKET_GROUP)
  if (gid !== undefined) {
    await chown(address.path, -1, gid).catch((err: unknown) => {
      logger?.warn(`cannot give the API socket to group ${SOCKET_GROUP}; only this user can use it`, { path: address.path, err })
    })
  }
  return address
}

/** Stops accepting, drops open connections, and removes a socket file. */
export async function closeListener (server: Server, address: ListenAddress | undefined): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  if (address?.kind === 'socket') await unlink(address.path).catch(() => {})
}

async function listening (server: Server, start: () => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    start()
    server.once('listening', () => { server.off('error', reject); resolve() })
  })
}

async function clearStaleSocket (path: string): Promise<void> {
  const stats = await lstat(path).catch(() => undefined)
  if (stats === undefined) return
  if (!stats.isSocket()) throw new AddressError(`${path} exists and is not a socket; the API socket needs a path of its own`)
  if (await answers(path)) throw new AddressError(`a daemon already listens on ${path}; stop it, or give this one another --api`)
  await unlink(path)
}

async function answers (path: string): Promise<boolean> {
  return await new Promise<boolean>(resolve => {
    const socket = connect(path)
    socket.setTimeout(SOCKET_PROBE_TIMEOUT_MS, () => { socket.destroy(); resolve(false) })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}

async function groupId (name: string): Promise<number | undefined> {
  const text = await readFile('/etc/group', 'utf8').catch(() => '')
  for (const line of text.split('\n')) {
    const [group, , gid] = line.split(':')
    if (group === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid)
  }
  return undefined
}
