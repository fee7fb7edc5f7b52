// What a benchmark's child process needs to measure itself and talk to its parent over IPC
// (scripts/bench-transfer.ts, scripts/bench-data-lane.ts).
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'

export interface CpuMark { all: NodeJS.CpuUsage, mainSeconds: number }

export function cpuMark (): CpuMark {
  return { all: process.cpuUsage(), mainSeconds: mainThreadSeconds() }
}

/** CPU since `start`: the whole process, and the main thread alone. */
export function cpuSince (start: CpuMark): { cpuSeconds: number, mainCpuSeconds: number } {
  const cpu = process.cpuUsage(start.all)
  return { cpuSeconds: (cpu.user + cpu.system) / 1e6, mainCpuSeconds: mainThreadSeconds() - start.mainSeconds }
}

/**
 * CPU of the main thread alone (Linux: /proc, in 10 ms ticks): the rest of a process's CPU is
 * libuv's pool (file writes, reads, fdatasync), LevelDB's thread and V8's GC helpers, which a
 * JavaScript profile does not show. NaN elsewhere.
 */
export function mainThreadSeconds (): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
    // After "pid (comm) ": field 3 (state) is index 0, utime (14) index 11, stime (15) index 12.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return NaN
  }
}

/** Sends to the parent and waits until the message is out: a child that exits right after must not lose it. */
export async function tell (message: unknown): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    process.send?.(message, undefined, {}, (err: Error | null) => { if (err !== null) reject(err); else resolve() })
  })
}

export async function firstMessage (): Promise<Record<string, unknown>> {
  return await new Promise(resolve => { process.once('message', (m: Record<string, unknown>) => { resolve(m) }) })
}

/** The parent's end of one child: its process, and its messages in order. */
export interface Child { process: ChildProcess, next: () => Promise<Record<string, unknown>> }

/**
 * Sends a forked child its arguments and queues what it answers; `next()` fails once the child
 * has exited with nothing left to read.
 */
export function talkTo (child: ChildProcess, role: string, args: unknown): Child {
  const inbox: Array<Record<string, unknown>> = []
  const waiting: Array<(m: Record<string, unknown>) => void> = []
  child.on('message', (message: Record<string, unknown>) => {
    const waiter = waiting.shift()
    if (waiter !== undefined) waiter(message)
    else inbox.push(message)
  })
  child.send(args as object)
  let exited: number | null | undefined
  child.once('exit', (code) => {
    exited = code
    // Messages sent just before the exit may still be on their way: give them a moment.
    setTimeout(() => { for (const waiter of waiting.splice(0)) waiter({ exited: code }) }, 500)
  })
  return {
    process: child,
    next: async () => {
      const message = await new Promise<Record<string, unknown>>((resolve) => {
        const queued = inbox.shift()
        if (queued !== undefined) resolve(queued)
        else if (exited !== undefined) resolve({ exited })
        else waiting.push(resolve)
      })
      if ('exited' in message) throw new Error(`${role} exited with ${String(message.exited)} before answering`)
      return message
    },
  }
}
