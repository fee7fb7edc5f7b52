import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'

/** A real `docker-registry` (Debian's distribution 2.8) on a free loopback port, filesystem storage in `dir`. */
export interface RegistryProcess {
  /** `127.0.0.1:PORT` */
  host: string
  url: string
  child: ChildProcess
  logs: () => string
  stop: () => Promise<void>
}

export const DOCKER_REGISTRY_BIN = '/usr/bin/docker-registry'
const START_TIMEOUT_MS = 20_000

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  return port
}

/** Where the registry runs: an IPv4 address of this machine to listen on, and a command prefix that runs it (`ip netns exec NS`). */
export interface RegistryPlace { host?: string, wrap?: string[] }

/**
 * Starts the registry with a config of our own (storage under `dir`, no auth unless
 * `extraConfig` adds some) and resolves once `GET /v2/` answers.
 */
export async function startDockerRegistry (dir: string, extraConfig = '', place: RegistryPlace = {}): Promise<RegistryProcess> {
  const host = place.host ?? '127.0.0.1'
  await mkdir(join(dir, 'storage'), { recursive: true })
  const port = await freePort()
  const config = join(dir, 'config.yml')
  await writeFile(config, [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${host}:${port}`,
    extraConfig,
    '',
  ].join('\n'))
  const [command = DOCKER_REGISTRY_BIN, ...prefix] = place.wrap !== undefined ? [...place.wrap, DOCKER_REGISTRY_BIN] : [DOCKER_REGISTRY_BIN]
  const child = spawn(command, [...prefix, 'serve', config], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr = (stderr + s).slice(-20_000) })
  const exited = once(child, 'exit')
  const url = `http://${host}:${port}`
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}:\n${stderr}`)
    try {
      const response = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) })
      await response.body?.cancel()
      if (response.status === 200 || response.status === 401) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`docker-registry did not answer GET /v2/ within ${START_TIMEOUT_MS} ms:\n${stderr}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    host: `${host}:${port}`,
    url,
    child,
    logs: () => stderr,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await exited
    },
  }
}

/**
 * Uploads `bytes` to `repository` as they are, with the distribution API's monolithic upload
 * (POST, then PUT with `?digest=`), past any client that would recompress them; their digest.
 */
export async function pushBlob (registry: Pick<RegistryProcess, 'url'>, repository: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
  const started = await fetch(`${registry.url}/v2/${repository}/blobs/uploads/`, { method: 'POST' })
  await started.body?.cancel()
  if (started.status !== 202) throw new Error(`POST /v2/${repository}/blobs/uploads/ → ${started.status}, not 202`)
  const location = new URL(started.headers.get('location') ?? '', registry.url)
  location.searchParams.set('digest', digest)
  const put = await fetch(location, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } })
  const answer = await put.text()
  if (put.status !== 201) throw new Error(`PUT of blob ${digest} → ${put.status}, not 201: ${answer}`)
  return digest
}
