// Builds nfq-delay.c on demand (cached by the hash of its source) and starts it.
import { createHash } from 'node:crypto'
import { access, mkdir, readFile, rename, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { inNetns, run, type Service, type Services } from './proc.js'

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'nfq-delay.c')
const READY_TIMEOUT_MS = 5000

export function defaultCacheDir (): string {
  const base = process.env.XDG_CACHE_HOME !== undefined && process.env.XDG_CACHE_HOME !== '' ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'shoal-fleet')
}

/** Path of the compiled program, compiling it first if this source was never built. */
export async function buildDelayProgram (cacheDir: string, signal?: AbortSignal): Promise<string> {
  const source = await readFile(SOURCE)
  const binary = join(cacheDir, `nfq-delay-${createHash('sha256').update(source).digest('hex').slice(0, 16)}`)
  try {
    await access(binary)
    return binary
  } catch { /* not built yet */ }
  await mkdir(cacheDir, { recursive: true })
  // Built under a private name and renamed: two runs compiling at once must not see half a binary.
  const tmp = `${binary}.${process.pid}.tmp`
  try {
    await run(['gcc', '-O2', '-Wall', '-o', tmp, SOURCE, '-lnetfilter_queue', '-lnfnetlink'], { signal })
  } catch (err) {
    await rm(tmp, { force: true })
    throw new Error('cannot build the delay program (is Debian\'s libnetfilter-queue-dev installed?)', { cause: err })
  }
  await rename(tmp, binary)
  return binary
}

export interface DelayProgramInit {
  services: Services
  ns: string
  queue: number
  delayMs: number
  cacheDir: string
  logFile?: string
  signal?: AbortSignal
}

/** Starts nfq-delay in `ns` and resolves once it has bound its queue. */
export async function startDelayProgram (init: DelayProgramInit): Promise<Service> {
  const binary = await buildDelayProgram(init.cacheDir, init.signal)
  let onReady: () => void = () => undefined
  const ready = new Promise<void>(resolve => { onReady = resolve })
  const service = await init.services.start('nfq-delay', inNetns(init.ns, [binary, '--queue', String(init.queue), '--delay-us', String(Math.round(init.delayMs * 1000))]), {
    logFile: init.logFile,
    onStdoutLine: line => { if (line.trim() === 'ready') onReady() },
  })
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    ready.then(() => 'ready' as const),
    service.done.then(() => 'exited' as const),
    new Promise<'timeout'>(resolve => { timer = setTimeout(() => { resolve('timeout') }, READY_TIMEOUT_MS) }),
  ])
  clearTimeout(timer)
  if (outcome !== 'ready') {
    await service.stop(500)
    throw new Error(`the delay program ${outcome === 'exited' ? 'exited' : 'did not get ready'} before binding NFQUEUE ${init.queue}${init.logFile !== undefined ? ` (see ${init.logFile})` : ''}`)
  }
  return service
}
