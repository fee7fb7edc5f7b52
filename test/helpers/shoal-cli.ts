import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The real entry point: every CLI test runs `node bin/shoal.js` as a subprocess. */
export const SHOAL_BIN = fileURLToPath(new URL('../../bin/shoal.js', import.meta.url))

/**
 * The node flags on a bin's first line (`#!/usr/bin/env -S node FLAGS`): a test runs the
 * process with them, as `/usr/bin/shoal` runs under systemd or in the container.
 */
export function shebangNodeFlags (bin: string = SHOAL_BIN): string[] {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? ''
  return first.startsWith('#!') ? first.split(' ').filter(word => word.startsWith('--')) : []
}

/**
 * The environment a bin's first line sets (`#!/usr/bin/env -S NAME=VALUE… node …`): a test's
 * process gets it as the deployed one does, over whatever the caller's environment says.
 */
export function shebangEnv (bin: string = SHOAL_BIN): Record<string, string> {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? ''
  if (!first.startsWith('#!')) return {}
  return Object.fromEntries(first.split(' ').map(word => /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(word)).filter(m => m !== null).map(m => [m[1]!, m[2]!]))
}

/** A CLI run that hangs is killed after this long, so a broken command fails its test instead of the whole run. */
const CLI_TIMEOUT_MS = 45_000

export interface CliResult {
  /** Exit code, or null when the process died of a signal. */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Starts `shoal [--data DATA] ARGS…` with stdio on pipes (so no progress bars), without waiting. */
export function spawnShoal (dataDir: string | undefined, args: string[], options: { env?: NodeJS.ProcessEnv, bin?: string } = {}): { child: ChildProcess, done: Promise<CliResult> } {
  const bin = options.bin ?? SHOAL_BIN
  const argv = [...shebangNodeFlags(bin), bin, ...(dataDir !== undefined ? ['--data', dataDir] : []), ...args]
  // Hermetic: a daemon named in the caller's environment must not take these commands over.
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env, ...shebangEnv(bin) }
  delete env.SHOAL_API
  delete env.SHOAL_DATA
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env })
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => { resolve({ code, signal, stdout, stderr }) })
  })
  return { child, done }
}

/** Runs `shoal` to completion. */
export async function shoal (dataDir: string | undefined, args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number, bin?: string } = {}): Promise<CliResult> {
  const { child, done } = spawnShoal(dataDir, args, options)
  const timer = setTimeout(() => { child.kill('SIGKILL') }, options.timeoutMs ?? CLI_TIMEOUT_MS)
  try {
    const result = await done
    if (result.signal === 'SIGKILL') throw new Error(`shoal ${args.join(' ')} did not finish within ${options.timeoutMs ?? CLI_TIMEOUT_MS} ms\n${result.stderr}`)
    return result
  } finally {
    clearTimeout(timer)
  }
}

/** Runs `shoal` and returns its trimmed stdout, failing with its stderr unless it exits 0. */
export async function shoalOk (dataDir: string | undefined, args: string[]): Promise<string> {
  const result = await shoal(dataDir, args)
  if (result.code !== 0) throw new Error(`shoal ${args.join(' ')} exited ${String(result.code)}: ${result.stderr}`)
  return result.stdout.trim()
}
