import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { SHOAL_BIN, shebangEnv, shebangNodeFlags } from './shoal-cli.js'

/**
 * A daemon that does not print its address within this long has failed to start. 90 s: under
 * load one logged 9 s between its first two lines and missed 30 s twice in one clean-clone
 * suite (2026-12-06, load ~8-12 with two busy loops).
 */
const START_TIMEOUT_MS = 90_000

/** Whether this process can give a daemon a mount namespace of its own (root): what `ownMount` needs. */
export function canMountOwnNamespace (): boolean {
  try {
    execFileSync('unshare', ['--mount', '--propagation', 'private', 'true'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * A `wrap` for startDaemonProcess: the daemon runs in a mount namespace of its own with a fresh
 * filesystem of `type` (`-o options`) mounted on `dir`, which nothing outside it sees.
 */
export function ownMount (dir: string, type: 'tmpfs' | 'ramfs', options?: string): string[] {
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `mount -t ${type}${options === undefined ? '' : ` -o ${options}`} none "$0" && exec "$@"`, dir]
}

export interface DaemonProcess {
  child: ChildProcess
  dataDir: string
  peerId: string
  /** Full multiaddr with /p2p/, to bootstrap others from. */
  address: string
  /** The control API (what `--api` takes): the Unix socket in the data directory. */
  api: string
  /** The registry mirror's HOST:PORT (also /metrics, the status page and /healthz). */
  registry: string
  logs: () => string
  /** SIGTERM and wait; returns the exit code. */
  stop: () => Promise<number | null>
  /** SIGKILL and wait, as a crash. */
  kill: () => Promise<void>
  status: () => Promise<DaemonStatus>
  request: <T>(method: string, path: string, body?: unknown) => Promise<T>
  /** A control request whose answer is read whole, whatever its status (NDJSON pulls, refusals). */
  controlText: (method: string, path: string, body?: unknown) => Promise<{ status: number, text: string }>
}

export interface DaemonStatus {
  peerId: string
  addresses: string[]
  bundles: Array<{ id: string, complete: boolean, bytes: number, presentBytes: number, refs: string[] }>
  peers: Array<{ id: string, bytesUploaded: number, bytesDownloaded: number, banned: boolean, gateway: boolean }>
  stats: { bytesUploaded: number, bytesDownloaded: number, chunksDownloaded: number, chunksFetchedTwice: number, chunksRejected: number, bans: number, perPeer: Record<string, { bytesUploaded: number, bytesDownloaded: number }> }
}

/**
 * Starts `shoal daemon` as its own process on loopback (registry on a free port, the control
 * API on DATA/api.sock, libp2p on a free TCP port) and waits for the line it prints with
 * `--json` once it is listening.
 */
export async function startDaemonProcess (dataDir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}, options: { bin?: string, wrap?: string[], listenHost?: string } = {}): Promise<DaemonProcess> {
  const bin = options.bin ?? SHOAL_BIN
  // With the node flags the bin's first line gives it: the daemon as it ships. `listenHost`: libp2p
  // (and the data lane beside it) on another IPv4 address, such as a network namespace's veth.
  const argv = [...shebangNodeFlags(bin), bin, '--data', dataDir, '--json', 'daemon', '--registry', '127.0.0.1:0', '--listen', `/ip4/${options.listenHost ?? '127.0.0.1'}/tcp/0`, '--log-level', 'debug', ...args]
  // `wrap` runs the daemon under another command (unshare, setpriv), which must exec what follows it.
  const [command = process.execPath, ...prefix] = options.wrap !== undefined ? [...options.wrap, process.execPath] : [process.execPath]
  const child = spawn(command, [...prefix, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, ...shebangEnv(bin) } })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const started = await new Promise<Started>((resolve, reject) => {
    let stdout = ''
    const timer = setTimeout(() => { reject(new Error(`daemon did not start within ${START_TIMEOUT_MS} ms:\n${stderr}`)) }, START_TIMEOUT_MS)
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      stdout += s
      const newline = stdout.indexOf('\n')
      if (newline < 0) return
      clearTimeout(timer)
      resolve(JSON.parse(stdout.slice(0, newline)) as Started)
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`daemon exited with ${String(code)} before it started:\n${stderr}`)) })
  })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const controlText = async (method: string, path: string, body?: unknown): Promise<{ status: number, text: string }> => await socketRequest(started.api, method, path, body)
  const request = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const { status, text } = await controlText(method, path, body)
    if (status >= 400) throw new Error(`${method} ${path} → ${status}: ${text}`)
    return JSON.parse(text) as T
  }
  return {
    child,
    dataDir,
    peerId: started.peerId,
    address: started.addresses.find(a => a.includes('/tcp/')) ?? '',
    api: started.api,
    registry: started.registry,
    logs: () => stderr,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill('SIGTERM')
      const [code] = await exited
      return code
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await exited
    },
    status: async () => await request<DaemonStatus>('GET', '/api/v1/status'),
    request,
    controlText,
  }
}

interface Started { peerId: string, addresses: string[], api: string, registry: string }

/** One request to a control API on a Unix socket (fetch cannot reach one), with JSON as the daemon requires. */
export async function socketRequest (socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number, text: string }> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
  return await new Promise((resolve, reject) => {
    const req = httpRequest({
      socketPath, method, path, agent: false,
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': payload.length },
    }, res => {
      const parts: Buffer[] = []
      res.on('data', (part: Buffer) => { parts.push(part) })
      res.once('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString() }) })
      res.once('error', reject)
    })
    req.once('error', reject)
    req.end(payload)
  })
}

/** A daemon's JSON log lines (stderr's other lines, such as Node's warnings, left out), in order. */
export function logLines (daemon: Pick<DaemonProcess, 'logs'>): Array<Record<string, unknown>> {
  return daemon.logs().split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>)
}

/** Polls a condition on a daemon until it holds, failing after `timeoutMs` with what was last seen. */
export async function waitFor<T> (what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (err) {
      last = err
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}${last !== undefined ? `: ${String(last)}` : ''}`)
}

/** Waits until `daemon` holds a complete bundle with `ref` (an image it made a bundle, or pulled whole) and returns it. */
export async function waitForBundleWithRef (daemon: Pick<DaemonProcess, 'status'>, ref: string, timeoutMs = 30_000): Promise<DaemonStatus['bundles'][number]> {
  return await waitFor(`a complete bundle with ref ${ref}`, async () => (await daemon.status()).bundles.find(b => b.complete && b.refs.includes(ref)), timeoutMs)
}
