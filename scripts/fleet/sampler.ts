// What the run cost the machine: the whole machine's CPU each second (/proc/stat),
// and CPU seconds and peak RSS of the processes under test (/proc/<pid>/stat, status).
import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'

// USER_HZ: /proc reports CPU times in these ticks; 100 on every Linux ABI Node runs on.
const CLOCK_TICKS_PER_SECOND = 100
const SAMPLE_INTERVAL_MS = 1000

export interface ProcessUsage {
  cpuSeconds: number
  /** The kernel's share of cpuSeconds: on the bed it includes sending each packet through veth, bridge, tc and the delay queue. */
  systemSeconds: number
  peakRssBytes: number
  /** Read and write system calls so far (/proc/PID/io syscr, syscw: sockets and files alike). */
  readCalls: number
  writeCalls: number
  /**
   * Times the main thread went to sleep and was woken (its voluntary context switches): an
   * event loop blocks in epoll_wait once per turn, so this counts its wake-ups — timers fired
   * and sockets readable alike — without touching the process.
   */
  mainThreadWakeups: number
}

export interface MachineCpu {
  cores: number
  /** The busiest one-second sample: busy share of the whole machine (100 = every core busy). */
  busiestSecondPercent: number
  /** The same in cores (2 = two cores fully busy). */
  busiestSecondCores: number
  meanPercent: number
  /** Busy percent per second, from the start of sampling. */
  perSecondPercent: number[]
}

/** A process not started yet, or a name with no process. */
export const NO_USAGE: Readonly<ProcessUsage> = { cpuSeconds: 0, systemSeconds: 0, peakRssBytes: 0, readCalls: 0, writeCalls: 0, mainThreadWakeups: 0 }

interface CpuTimes { busy: number, total: number }

async function readCpuTimes (): Promise<CpuTimes> {
  const text = await readFile('/proc/stat', 'utf8')
  const line = text.split('\n').find(l => l.startsWith('cpu ')) ?? ''
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = fields.reduce((a, b) => a + b, 0)
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
  return { busy: total - idle, total }
}

/** CPU seconds so far and peak RSS of one live process; undefined once it is gone. */
export async function readProcessUsage (pid: number): Promise<ProcessUsage | undefined> {
  try {
    const [stat, status, io, mainThread] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/io`, 'utf8').catch(() => ''),
      // The main thread's task has the process's id.
      readFile(`/proc/${pid}/task/${pid}/status`, 'utf8').catch(() => ''),
    ])
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    const user = Number(rest[11])
    const system = Number(rest[12])
    const hwm = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)
    const calls = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(io)?.[1] ?? 0)
    return {
      cpuSeconds: (user + system) / CLOCK_TICKS_PER_SECOND,
      systemSeconds: system / CLOCK_TICKS_PER_SECOND,
      peakRssBytes: hwm === null ? 0 : Number(hwm[1]) * 1024,
      readCalls: calls('syscr'),
      writeCalls: calls('syscw'),
      mainThreadWakeups: Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(mainThread)?.[1] ?? 0),
    }
  } catch {
    return undefined
  }
}

/**
 * Samples the machine every second, and the watched processes with it, keeping the
 * last reading of each: a process killed by a fault still reports what it used.
 * A watched name may be several processes over time (a daemon restarted after a
 * kill): their CPU seconds add up, their peak RSS is the largest.
 */
export class Sampler {
  private timer: NodeJS.Timeout | undefined
  private last: CpuTimes | undefined
  private readonly perSecond: number[] = []
  private readonly watched = new Map<string, Map<number, ProcessUsage>>()
  private sampling: Promise<void> = Promise.resolve()

  start (): void {
    if (this.timer !== undefined) return
    void readCpuTimes().then(times => { this.last = times })
    this.timer = setInterval(() => { this.sampling = this.sample() }, SAMPLE_INTERVAL_MS)
  }

  watch (name: string, pid: number): void {
    const pids = this.watched.get(name) ?? new Map<number, ProcessUsage>()
    pids.set(pid, pids.get(pid) ?? { ...NO_USAGE })
    this.watched.set(name, pids)
  }

  /** Reads the processes now (call it just before stopping or killing one). */
  async refresh (name?: string): Promise<void> {
    for (const [watchedName, pids] of this.watched) {
      if (name !== undefined && watchedName !== name) continue
      for (const pid of pids.keys()) {
        const usage = await readProcessUsage(pid)
        if (usage !== undefined) pids.set(pid, usage)
      }
    }
  }

  usage (name: string): ProcessUsage | undefined {
    const pids = this.watched.get(name)
    if (pids === undefined) return undefined
    const sum: ProcessUsage = { ...NO_USAGE }
    for (const usage of pids.values()) {
      sum.cpuSeconds += usage.cpuSeconds
      sum.systemSeconds += usage.systemSeconds
      sum.readCalls += usage.readCalls
      sum.writeCalls += usage.writeCalls
      sum.mainThreadWakeups += usage.mainThreadWakeups
      sum.peakRssBytes = Math.max(sum.peakRssBytes, usage.peakRssBytes)
    }
    return sum
  }

  private async sample (): Promise<void> {
    const now = await readCpuTimes()
    if (this.last !== undefined && now.total > this.last.total) {
      this.perSecond.push(100 * (now.busy - this.last.busy) / (now.total - this.last.total))
    }
    this.last = now
    await this.refresh()
  }

  async stop (): Promise<MachineCpu> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.sampling
    const cores = availableParallelism()
    const busiest = this.perSecond.reduce((a, b) => Math.max(a, b), 0)
    const mean = this.perSecond.length === 0 ? 0 : this.perSecond.reduce((a, b) => a + b, 0) / this.perSecond.length
    return {
      cores,
      busiestSecondPercent: round(busiest, 1),
      busiestSecondCores: round(busiest * cores / 100, 2),
      meanPercent: round(mean, 1),
      perSecondPercent: this.perSecond.map(p => round(p, 1)),
    }
  }
}

/**
 * Now on CLOCK_MONOTONIC, in microseconds: the clock V8 stamps CPU profile samples with
 * (`node --cpu-prof`), the same for every process on the machine, so the runner's phase
 * boundaries cut the daemons' profiles without any clock translation.
 */
export function monotonicUs (): number {
  return Number(process.hrtime.bigint() / 1000n)
}

export function round (value: number, digits: number): number {
  const factor = 10 ** digits
  return Math.round(value * factor) / factor
}
