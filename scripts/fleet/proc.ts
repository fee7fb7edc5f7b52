// Child processes of the bed: one-shot commands and long-running services.
//
// Every child gets its own process group (spawn's `detached`), for two reasons: a
// Ctrl-C on the terminal reaches only the runner, which then tears down in order
// instead of racing its children's deaths; and a stop signal sent to the group also
// reaches what the child started itself (`ip netns exec` → `/usr/bin/time` → skopeo).
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { once } from 'node:events'

export interface RunOptions {
  signal?: AbortSignal
  env?: NodeJS.ProcessEnv
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean
  timeoutMs?: number
}

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export class CommandFailedError extends Error {
  override name = 'CommandFailedError'
  constructor (readonly command: string[], readonly result: RunResult) {
    super(`${command.join(' ')} exited with ${result.code ?? result.signal ?? '?'}: ${result.stderr.trim().slice(-2000) || result.stdout.trim().slice(-500)}`)
  }
}

/** The argv that runs `command` inside network namespace `ns`. */
export function inNetns (ns: string, command: string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...command]
}

/** Runs a command to completion and collects its output. */
export async function run (command: string[], options: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = command
  if (file === undefined) throw new TypeError('empty command')
  options.signal?.throwIfAborted()
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: options.env ?? process.env })
  const stdout: Buffer[] = []
  const stderr: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
  const kill = (): void => { killGroup(child, 'SIGKILL') }
  options.signal?.addEventListener('abort', kill, { once: true })
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(kill, options.timeoutMs)
  try {
    const [code, signal] = await exited(child)
    const result: RunResult = { code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') }
    options.signal?.throwIfAborted()
    if (code !== 0 && options.allowFailure !== true) throw new CommandFailedError(command, result)
    return result
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', kill)
  }
}

async function exited (child: ChildProcess): Promise<[number | null, NodeJS.Signals | null]> {
  if (child.exitCode !== null || child.signalCode !== null) return [child.exitCode, child.signalCode]
  // 'close', not 'exit': the output pipes are drained by then.
  const [code, signal] = await Promise.race([
    once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>,
    once(child, 'error').then(([err]) => { throw err as Error }),
  ])
  return [code, signal]
}

function killGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    try { child.kill(signal) } catch { /* already gone */ }
  }
}

export interface ServiceOptions {
  env?: NodeJS.ProcessEnv
  /** stdout and stderr go here (appended), so a restarted service keeps one log. */
  logFile?: string
  /** Lines on stdout are also handed to this callback (the delay program says "ready"). */
  onStdoutLine?: (line: string) => void
}

/** A long-running child: its pid, a promise of its end, and how to stop it. */
export class Service {
  readonly pid: number
  readonly done: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  private readonly log: WriteStream | undefined

  constructor (readonly name: string, readonly command: string[], private readonly child: ChildProcess, log: WriteStream | undefined) {
    if (child.pid === undefined) throw new Error(`${name}: spawn failed`)
    this.pid = child.pid
    this.log = log
    this.done = exited(child).then(([code, signal]) => ({ code, signal }), () => ({ code: null, signal: null }))
  }

  get running (): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Sends a signal to the service's process group (SIGKILL for the "kill" fault). */
  signal (signal: NodeJS.Signals): void {
    killGroup(this.child, signal)
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone and its log closed. */
  async stop (graceMs = 5000): Promise<void> {
    if (this.running) {
      this.signal('SIGTERM')
      const timer = setTimeout(() => { this.signal('SIGKILL') }, graceMs)
      await this.done
      clearTimeout(timer)
    }
    await this.done
    if (this.log !== undefined && !this.log.closed) {
      this.log.end()
      await once(this.log, 'close').catch(() => undefined)
    }
  }
}

/** Every service the run started, so that teardown can stop them all whatever happened. */
export class Services {
  private readonly all = new Set<Service>()

  async start (name: string, command: string[], options: ServiceOptions = {}): Promise<Service> {
    const [file, ...args] = command
    if (file === undefined) throw new TypeError('empty command')
    const log = options.logFile === undefined ? undefined : createWriteStream(options.logFile, { flags: 'a' })
    if (log !== undefined) await once(log, 'open')
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: options.env ?? process.env })
    // An exec failure (ENOENT) surfaces as 'error'; without a listener it would crash the runner.
    child.on('error', err => { log?.write(`[fleet] ${name}: ${err.message}\n`) })
    let pending = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      log?.write(chunk)
      if (options.onStdoutLine === undefined) return
      pending += chunk.toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) options.onStdoutLine(line)
    })
    child.stderr?.on('data', (chunk: Buffer) => log?.write(chunk))
    const service = new Service(name, command, child, log)
    this.all.add(service)
    return service
  }

  list (): Service[] {
    return [...this.all]
  }

  /** Stops every service, in parallel, never throwing: teardown must go on. */
  async stopAll (graceMs = 5000): Promise<void> {
    await Promise.all([...this.all].map(async service => { await service.stop(graceMs).catch(() => undefined) }))
  }
}

export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(timer); reject(signal?.reason as Error) }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Polls `probe` until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T> (what: string, probe: () => Promise<T | undefined>, options: { timeoutMs: number, intervalMs?: number, signal?: AbortSignal }): Promise<T> {
  const deadline = Date.now() + options.timeoutMs
  let lastError: unknown
  for (;;) {
    options.signal?.throwIfAborted()
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`)
    }
    await sleep(options.intervalMs ?? 200, options.signal)
  }
}
