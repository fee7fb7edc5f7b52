import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)
const BOOT_TIMEOUT_MS = 10_000

/** containerd with its own root, state and socket (FACTS.md "Real clients"), without the CRI plugin. */
export class ContainerdProcess {
  private child: ChildProcess | undefined
  readonly socket: string
  readonly hostsDir: string

  constructor (readonly dir: string) {
    this.socket = join(dir, 'containerd.sock')
    this.hostsDir = join(dir, 'hosts')
  }

  async start (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const config = join(this.dir, 'config.toml')
    await writeFile(config, [
      'version = 2', `root = "${join(this.dir, 'root')}"`, `state = "${join(this.dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]', '[grpc]', `  address = "${this.socket}"`, '',
    ].join('\n'))
    const child = spawn('containerd', ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.child = child
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`containerd did not boot within ${BOOT_TIMEOUT_MS} ms`)) }, BOOT_TIMEOUT_MS)
      child.once('exit', code => { clearTimeout(timer); reject(new Error(`containerd exited with ${String(code)}`)) })
      child.stderr?.on('data', (data: Buffer) => {
        if (data.toString().includes('containerd successfully booted')) { clearTimeout(timer); resolve() }
      })
    })
  }

  async stop (): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null) return
    const exited = new Promise(resolve => { child.once('exit', resolve) })
    child.kill('SIGTERM')
    await exited
  }

  /** A hosts.toml as in deploy/containerd: the mirror first, then `server`. */
  async mirror (registry: string, server: string, mirrorUrl: string): Promise<void> {
    await mkdir(join(this.hostsDir, registry), { recursive: true })
    await writeFile(join(this.hostsDir, registry, 'hosts.toml'), [
      `server = "${server}"`, `[host."${mirrorUrl}"]`, '  capabilities = ["pull", "resolve"]', '',
    ].join('\n'))
  }

  async ctr (args: string[]): Promise<string> {
    const { stdout } = await execFileAsync('ctr', ['--address', this.socket, ...args], { timeout: 60_000 })
    return stdout
  }
}
