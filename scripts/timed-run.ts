// What the benchmarks share: running a command under GNU time, and medians.
import { execFile, spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

/** Wall time, and CPU time (user + system) and peak RSS where GNU time is there: on a shared machine CPU time is the steadier figure. */
export interface TimedSample { seconds: number, cpuSeconds?: number, peakRssMb?: number, stdout: string }

/** Runs a command to completion; resolves with its wall time and (via GNU time, when present) its CPU time and peak RSS. */
export async function timed (command: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<TimedSample> {
  const useTime = await hasGnuTime()
  const argv = useTime ? ['-f', '%M %U %S', command, ...args] : args
  const started = performance.now()
  const child = spawn(useTime ? '/usr/bin/time' : command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  })
  const seconds = (performance.now() - started) / 1000
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${String(code)}: ${stderr}`)
  const sample: TimedSample = { seconds, stdout }
  if (useTime) {
    // GNU time prints "%M %U %S" (max RSS in KiB, user and system seconds) as the last line of stderr.
    const lines = stderr.trim().split('\n')
    const [rssKib, user, system] = (lines[lines.length - 1] ?? '').split(' ').map(Number)
    sample.peakRssMb = (rssKib ?? 0) / 1024
    sample.cpuSeconds = (user ?? 0) + (system ?? 0)
  }
  return sample
}

let gnuTime: boolean | undefined
export async function hasGnuTime (): Promise<boolean> {
  if (gnuTime === undefined) gnuTime = await execFileAsync('/usr/bin/time', ['-f', '%M', 'true']).then(() => true, () => false)
  return gnuTime
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
