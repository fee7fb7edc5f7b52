import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { credentials, loadPackageDefinition, type Client, type ServiceError } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { until } from './until.js'

const execFileAsync = promisify(execFile)

const BOOT_TIMEOUT_MS = 10_000
const STOP_TIMEOUT_MS = 10_000
const CTR_TIMEOUT_MS = 60_000

/** Why containerd tests cannot run here, or undefined when they can (root, containerd and ctr installed). */
export function containerdUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'containerd needs root'
  if (!existsSync('/usr/bin/containerd') || !existsSync('/usr/bin/ctr')) return 'containerd is not installed (/usr/bin/containerd, /usr/bin/ctr)'
  return undefined
}

export interface CtrResult { code: number, stdout: string, stderr: string }

/**
 * A real containerd with its own root, state and socket under `dir` (FACTS.md "Real clients"),
 * without the CRI plugin, and `ctr` pointed at it. Registry hosts are configured the way
 * containerd's `config_path` reads them: `<hostsDir>/<registry>/hosts.toml`, which `ctr`
 * takes as `--hosts-dir` (ctr resolves and fetches itself, then writes into containerd).
 */
export class Containerd {
  private child: ChildProcess | undefined
  private stderr = ''
  readonly socket: string
  readonly root: string
  readonly state: string
  readonly hostsDir: string

  /** `cri`: start the CRI plugin too (registry hosts from `hostsDir`), for `criPull`. */
  constructor (readonly dir: string, private readonly options: { cri?: boolean } = {}) {
    this.socket = join(dir, 'containerd.sock')
    this.root = join(dir, 'root')
    this.state = join(dir, 'state')
    this.hostsDir = join(dir, 'certs.d')
  }

  /** The containerd process's ID while it runs (benchmarks read its CPU time from /proc). */
  get pid (): number | undefined {
    return this.child?.pid
  }

  /** What containerd wrote to stderr, for failure messages. */
  logs (): string {
    return this.stderr
  }

  async start (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const config = join(this.dir, 'config.toml')
    const cri = this.options.cri === true
      ? [
          '[plugins."io.containerd.grpc.v1.cri"]', '  stream_server_port = "0"', '  enable_selinux = false',
          '[plugins."io.containerd.grpc.v1.cri".registry]', `  config_path = "${this.hostsDir}"`,
        ]
      : ['disabled_plugins = ["io.containerd.grpc.v1.cri"]']
    await writeFile(config, [
      'version = 2', `root = "${this.root}"`, `state = "${this.state}"`,
      ...(this.options.cri === true ? [] : cri), '[grpc]', `  address = "${this.socket}"`,
      ...(this.options.cri === true ? cri : []), '',
    ].join('\n'))
    const child = spawn('containerd', ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.child = child
    child.stderr?.setEncoding('utf8')
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`containerd did not boot within ${BOOT_TIMEOUT_MS} ms:\n${this.stderr}`)) }, BOOT_TIMEOUT_MS)
      child.once('exit', code => { clearTimeout(timer); reject(new Error(`containerd exited with ${String(code)}:\n${this.stderr}`)) })
      child.stderr?.on('data', (data: string) => {
        this.stderr += data
        if (this.stderr.includes('containerd successfully booted')) { clearTimeout(timer); resolve() }
      })
    })
    // containerd 1.6's CRI plugin finishes starting after containerd's boot line and answers
    // "server is not initialized yet" until then: a PullImage in that gap failed a bench pull
    // once in ~250 (the link lane, load 8).
    if (this.options.cri === true) await until('containerd\'s CRI to serve', async () => await this.criServes() ? true : undefined, BOOT_TIMEOUT_MS)
  }

  /** Whether the CRI answers an ImageService call yet (false while its plugin is still starting). */
  private async criServes (): Promise<boolean> {
    const client = criImageClient(this.socket)
    try {
      return await new Promise<boolean>((resolve, reject) => {
        client.listImages({}, { deadline: Date.now() + CTR_TIMEOUT_MS }, (err) => {
          if (err === null) resolve(true)
          else if (err.details.includes('not initialized')) resolve(false)
          else reject(new Error(`CRI ListImages: ${err.details}`, { cause: err }))
        })
      })
    } finally {
      client.close()
    }
  }

  /**
   * Writes `<hostsDir>/<registry>/hosts.toml`: `server` is where containerd goes when every
   * mirror fails, each mirror is tried first, in order, for pull and resolve.
   */
  async hosts (registry: string, server: string, mirrors: string[]): Promise<void> {
    await mkdir(join(this.hostsDir, registry), { recursive: true })
    const lines = [`server = "${server}"`, '']
    for (const mirror of mirrors) lines.push(`[host."${mirror}"]`, '  capabilities = ["pull", "resolve"]', '')
    await writeFile(join(this.hostsDir, registry, 'hosts.toml'), lines.join('\n'))
  }

  /** Runs ctr against this containerd; never throws for a non-zero exit, the caller judges. */
  async ctr (args: string[], timeoutMs = CTR_TIMEOUT_MS): Promise<CtrResult> {
    try {
      const { stdout, stderr } = await execFileAsync('ctr', ['--address', this.socket, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 })
      return { code: 0, stdout, stderr }
    } catch (err) {
      const e = err as { code?: number | string, stdout?: string, stderr?: string, killed?: boolean }
      if (e.killed === true) throw new Error(`ctr ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${e.stderr ?? ''}`)
      if (typeof e.code !== 'number') throw err
      return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
    }
  }

  /** Runs ctr and returns its stdout, failing with its stderr unless it exits 0. */
  async ctrOk (args: string[], timeoutMs = CTR_TIMEOUT_MS): Promise<string> {
    const result = await this.ctr(args, timeoutMs)
    if (result.code !== 0) throw new Error(`ctr ${args.join(' ')} exited ${result.code}:\n${result.stderr}`)
    return result.stdout
  }

  /** `ctr images pull` through the hosts.toml mirrors; it unpacks into the default snapshotter. */
  async pull (ref: string): Promise<CtrResult> {
    return await this.ctr(['images', 'pull', '--hosts-dir', this.hostsDir, ref])
  }

  /**
   * Pulls through the CRI (runtime.v1 ImageService.PullImage), the path the kubelet takes:
   * hosts come from the CRI plugin's `config_path` (this `hostsDir`), and the image is
   * unpacked in the `k8s.io` namespace. Resolves with the image ref containerd reports.
   */
  async criPull (ref: string, timeoutMs = CTR_TIMEOUT_MS): Promise<string> {
    const client = criImageClient(this.socket)
    try {
      return await new Promise<string>((resolve, reject) => {
        client.pullImage({ image: { image: ref } }, { deadline: Date.now() + timeoutMs }, (err, response) => {
          if (err !== null) reject(new Error(`CRI PullImage ${ref}: ${err.details}`, { cause: err }))
          else resolve(response?.imageRef ?? '')
        })
      })
    } finally {
      client.close()
    }
  }

  async stop (): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, STOP_TIMEOUT_MS)
    try {
      await exited
    } finally {
      clearTimeout(timer)
    }
  }

  /** Stops containerd, unmounts whatever it left mounted under `dir` (overlay snapshots), and removes `dir`. */
  async destroy (): Promise<void> {
    await this.stop()
    await unmountUnder(this.dir)
    await rm(this.dir, { recursive: true, force: true })
  }
}

const CRI_PROTO = fileURLToPath(new URL('./cri-image.proto', import.meta.url))

interface CriImageService {
  listImages: (request: Record<string, never>, options: { deadline: number }, callback: (err: ServiceError | null) => void) => void
  pullImage: (request: { image: { image: string } }, options: { deadline: number }, callback: (err: ServiceError | null, response?: { imageRef: string }) => void) => void
}

/** A client of the CRI's ImageService on containerd's socket (to be closed). */
function criImageClient (socket: string): Client & CriImageService {
  const definition = loadSync(CRI_PROTO, { keepCase: false })
  const runtime = (loadPackageDefinition(definition).runtime as unknown as { v1: { ImageService: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client & CriImageService } }).v1
  return new runtime.ImageService(`unix://${socket}`, credentials.createInsecure())
}

/** Every mount point at or under `dir`, deepest first, from /proc/mounts. */
export async function mountsUnder (dir: string): Promise<string[]> {
  const table = await readFile('/proc/mounts', 'utf8')
  const prefix = dir.endsWith('/') ? dir : `${dir}/`
  return table.split('\n')
    .map(line => line.split(' ')[1])
    .filter((point): point is string => point !== undefined)
    // /proc/mounts escapes spaces and the like as octal.
    .map(point => point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter(point => point === dir || point.startsWith(prefix))
    .sort((a, b) => b.length - a.length)
}

/**
 * An e2e test's end: stops what it started, in order (containerd first, so its mounts go),
 * then removes `work` and returns what was still mounted under it (a test expects none).
 */
export async function tearDownWork (work: string | undefined, started: { containerd?: Containerd | undefined, containerds?: Containerd[], daemons: Array<{ kill: () => Promise<void> }>, servers: Array<{ close: () => Promise<void> } | undefined> }): Promise<string[]> {
  await started.containerd?.destroy()
  await Promise.all((started.containerds ?? []).map(async c => { await c.destroy() }))
  await Promise.all(started.daemons.map(async d => { await d.kill() }))
  for (const server of started.servers) await server?.close()
  if (work === undefined) return []
  const leftMounted = await mountsUnder(work)
  await rm(work, { recursive: true, force: true })
  return leftMounted
}

async function unmountUnder (dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) {
    try {
      await execFileAsync('umount', [point])
    } catch {
      // Busy: detach it so the directory can still be removed.
      await execFileAsync('umount', ['-l', point]).catch(() => {})
    }
  }
}
