// A 100 ms time series of what a pull costs the machine, for bench-containerd's --series:
// the disk's writes (/proc/diskstats), dirty and writeback pages (/proc/meminfo), and per
// process CPU-seconds, main-thread CPU-seconds and main-thread run-queue waits. Linux only.
import { readdir, readFile } from 'node:fs/promises'

const SECTOR_BYTES = 512
const CLOCK_TICKS_PER_S = 100

export interface SeriesPoint {
  /** ms since the sampler started */
  t: number
  /** bytes written to the block devices so far, and ms they spent with writes in flight */
  diskWrittenBytes: number
  diskWriteMs: number
  dirtyKiB: number
  writebackKiB: number
  /**
   * The whole machine's CPU-seconds so far, all cores: busy (everything but idle and iowait,
   * every process of every session included) and stolen by the hypervisor.
   */
  machineBusyS: number
  machineStealS: number
  /**
   * CPU-seconds so far of the sampling process and every live process below it (the bench, its
   * relay, containerd, `ctr`, docker-registry, the daemons): the bench's own share of the machine.
   */
  treeCpuS: number
  /** per watched process, by label: [CPU-s, main-thread CPU-s, main-thread run-queue s] */
  cpu: Record<string, [number, number, number]>
}

export interface Sampler {
  stop: () => Promise<SeriesPoint[]>
}

/** Samples every `intervalMs` until stopped; `pids` maps a label to a process ID. */
export function startSampler (pids: Record<string, number | undefined>, intervalMs = 100): Sampler {
  const points: SeriesPoint[] = []
  const started = performance.now()
  let running = true
  const loop = (async () => {
    while (running) {
      const at = performance.now()
      points.push(await sample(pids, at - started))
      const wait = intervalMs - (performance.now() - at)
      if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      return points
    },
  }
}

async function sample (pids: Record<string, number | undefined>, t: number): Promise<SeriesPoint> {
  const [disk, mem, stat] = await Promise.all([readFile('/proc/diskstats', 'utf8'), readFile('/proc/meminfo', 'utf8'), readFile('/proc/stat', 'utf8')])
  const machine = machineCpuOf(stat)
  const treeCpuS = await treeCpuSeconds(process.pid)
  let diskWrittenBytes = 0
  let diskWriteMs = 0
  for (const line of disk.split('\n')) {
    const fields = line.trim().split(/\s+/)
    // Whole disks only (vda, sda, nvme0n1), not their partitions, nor zram or loop devices.
    const name = fields[2] ?? ''
    if (!/^(vd[a-z]|sd[a-z]|nvme\d+n\d+|xvd[a-z])$/.test(name)) continue
    diskWrittenBytes += Number(fields[9]) * SECTOR_BYTES
    diskWriteMs += Number(fields[10])
  }
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(mem)?.[1] ?? 0)
  const cpu: Record<string, [number, number, number]> = {}
  await Promise.all(Object.entries(pids).map(async ([label, pid]) => {
    if (pid === undefined) return
    // A process that has exited reads as 0, as its figures stop.
    const [whole, main, waiting] = await Promise.all([
      cpuSeconds(pid).catch(() => 0),
      cpuSeconds(pid, false, true).catch(() => 0),
      runQueueSeconds(pid),
    ])
    cpu[label] = [whole, main, waiting]
  }))
  return { t, diskWrittenBytes, diskWriteMs, dirtyKiB: kib('Dirty'), writebackKiB: kib('Writeback'), machineBusyS: machine.busyS, machineStealS: machine.stealS, treeCpuS, cpu }
}

/** CPU-seconds (user + system) of `root` and its live descendants, from every /proc/PID/stat. */
async function treeCpuSeconds (root: number): Promise<number> {
  const entries = (await readdir('/proc')).filter(name => /^\d+$/.test(name))
  const procs = await Promise.all(entries.map(async name => {
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '')
    // Fields after the command name (which may hold spaces): state, ppid, ..., utime (12th), stime (13th).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { pid: Number(name), ppid: Number(fields[1]), cpuS: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S }
  }))
  const children = new Map<number, typeof procs>()
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p])
  let total = 0
  const stack = procs.filter(p => p.pid === root)
  for (let p = stack.pop(); p !== undefined; p = stack.pop()) {
    if (Number.isFinite(p.cpuS)) total += p.cpuS
    stack.push(...(children.get(p.pid) ?? []))
  }
  return total
}

/** /proc/stat's first line: user nice system idle iowait irq softirq steal guest guest_nice, in ticks. */
function machineCpuOf (stat: string): { busyS: number, stealS: number } {
  const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = (stat.split('\n')[0] ?? '').trim().split(/\s+/).map(Number)
  return { busyS: (user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_S, stealS: steal / CLOCK_TICKS_PER_S }
}

/**
 * How many cores the machine kept busy on average between `fromMs` and `toMs` of a series
 * (the points nearest inside), and the share of its 100 ms steps with both of two cores
 * nearly full (over 1.9 cores busy): a pull that leaves a core idle is not CPU-bound.
 */
export function machineLoadOf (points: SeriesPoint[], fromMs: number, toMs: number, cores: number): { busyCores: number, fullShare: number, stealCores: number, benchCores: number } {
  const inside = points.filter(p => p.t >= fromMs && p.t <= toMs)
  const first = inside[0]
  const last = inside[inside.length - 1]
  if (first === undefined || last === undefined || last.t <= first.t) return { busyCores: NaN, fullShare: NaN, stealCores: NaN, benchCores: NaN }
  let full = 0
  for (let i = 1; i < inside.length; i++) {
    const a = inside[i - 1]
    const b = inside[i]
    if (a === undefined || b === undefined || b.t <= a.t) continue
    if ((b.machineBusyS - a.machineBusyS) / ((b.t - a.t) / 1000) > cores - 0.1) full++
  }
  const seconds = (last.t - first.t) / 1000
  return { busyCores: (last.machineBusyS - first.machineBusyS) / seconds, fullShare: full / (inside.length - 1), stealCores: (last.machineStealS - first.machineStealS) / seconds, benchCores: (last.treeCpuS - first.treeCpuS) / seconds }
}

/**
 * CPU-seconds (user + system) a process has used so far, from /proc (Linux; USER_HZ is 100
 * there); with `children`, those of its children that exited and were waited for instead.
 */
export async function cpuSeconds (pid: number | 'self' | undefined, children = false, thread = false): Promise<number> {
  if (pid === undefined) return 0
  // With `thread`, the main thread's own (its task has the process's ID).
  const stat = await readFile(thread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces, so cut at its closing parenthesis).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const [user, system] = children ? [fields[13], fields[14]] : [fields[11], fields[12]]
  return (Number(user) + Number(system)) / CLOCK_TICKS_PER_S
}

/**
 * Seconds a process's main thread has spent so far runnable but waiting for a CPU: the second
 * field of /proc/PID/schedstat (nanoseconds; needs a kernel with schedstats, else 0).
 */
export async function runQueueSeconds (pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0
  const fields = (await readFile(`/proc/${pid}/schedstat`, 'utf8').catch(() => '')).trim().split(' ')
  return Number(fields[1] ?? 0) / 1e9
}

/**
 * A byte-rate time series in one line: the longest waits between consecutive MiB of a body,
 * and the time spent in waits over `gapMs` (a pipeline's stalls, against a uniformly lower rate).
 */
export function gapsOf (mibAt: number[], gapMs = 50): { gaps: number, gapS: number, longestMs: number } {
  let gaps = 0
  let gapS = 0
  let longestMs = 0
  for (let i = 1; i < mibAt.length; i++) {
    const d = (mibAt[i] ?? 0) - (mibAt[i - 1] ?? 0)
    longestMs = Math.max(longestMs, d)
    if (d > gapMs) {
      gaps++
      gapS += d / 1000
    }
  }
  return { gaps, gapS, longestMs }
}
