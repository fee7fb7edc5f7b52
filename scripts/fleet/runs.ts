// Run ids, the state file each run leaves while it lives, and the removal of what
// earlier runs left behind (a runner killed with SIGKILL cannot clean up after itself).
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { removeNetns } from './bed.js'
import { run } from './proc.js'

/** Every fleet name starts with this: namespaces, interfaces, iptables comments, work dirs. */
export const RUN_PREFIX = 'shf'

export function newRunId (): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  return RUN_PREFIX + [...randomBytes(5)].map(b => alphabet[b % alphabet.length]).join('')
}

/** Work and state directories of every run live here. */
export function runsRoot (): string {
  return join(tmpdir(), 'shoal-fleet')
}

interface RunState { runId: string, ownerPid: number, ownerStart: string, workDir: string, startedAt: string }

/** Written before the first namespace exists, so a leftover namespace always has a state to check. */
export async function writeRunState (runId: string, workDir: string): Promise<void> {
  const dir = join(runsRoot(), 'state')
  await mkdir(dir, { recursive: true })
  const state: RunState = { runId, ownerPid: process.pid, ownerStart: await processStart(process.pid) ?? '', workDir, startedAt: new Date().toISOString() }
  await writeFile(join(dir, `${runId}.json`), JSON.stringify(state))
}

export async function removeRunState (runId: string): Promise<void> {
  await rm(join(runsRoot(), 'state', `${runId}.json`), { force: true })
}

/** Field 22 of /proc/<pid>/stat: with the pid, it tells a live runner from a reused pid. */
async function processStart (pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

async function readRunState (runId: string): Promise<RunState | undefined> {
  try {
    return JSON.parse(await readFile(join(runsRoot(), 'state', `${runId}.json`), 'utf8')) as RunState
  } catch {
    return undefined
  }
}

async function runnerAlive (state: RunState | undefined): Promise<boolean> {
  if (state === undefined) return false
  const start = await processStart(state.ownerPid)
  return start !== undefined && start === state.ownerStart
}

export interface Leftovers {
  namespaces: string[]
  /** Interfaces in the machine's own namespace whose names start with the prefix. */
  links: string[]
  /** Rules in the machine's own iptables that mention the prefix. */
  iptablesRules: string[]
  /** Processes living in one of the prefix's namespaces, or naming the prefix on their command line. */
  processes: number[]
}

export async function listNetns (): Promise<string[]> {
  const { stdout } = await run(['ip', 'netns', 'list'], { allowFailure: true })
  // Lines look like "name (id: 3)" or just "name".
  return stdout.split('\n').map(line => line.split(' ')[0] ?? '').filter(name => name !== '')
}

/** Everything with this prefix that still exists; all empty after a clean run. */
export async function findLeftovers (prefix: string): Promise<Leftovers> {
  const namespaces = (await listNetns()).filter(ns => ns.startsWith(prefix))
  const { stdout: linksJson } = await run(['ip', '-j', 'link', 'show'])
  const links = (JSON.parse(linksJson) as Array<{ ifname: string }>).map(l => l.ifname).filter(name => name.startsWith(prefix))
  const rules = await run(['iptables', '-w', '-S'], { allowFailure: true })
  const iptablesRules = rules.stdout.split('\n').filter(line => line.includes(prefix))
  const processes: number[] = []
  for (const ns of namespaces) {
    const { stdout } = await run(['ip', 'netns', 'pids', ns], { allowFailure: true })
    processes.push(...stdout.split(/\s+/).filter(s => s !== '').map(Number))
  }
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry)
    if (!Number.isSafeInteger(pid) || pid === process.pid || processes.includes(pid)) continue
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    // Arguments are NUL-separated; work dirs and config paths carry the run id.
    if (cmdline.split('\0').some(arg => arg.includes(prefix))) processes.push(pid)
  }
  return { namespaces, links, iptablesRules, processes }
}

export interface CleanupReport { removedRuns: string[], skippedLiveRuns: string[], problems: string[] }

/**
 * Removes the namespaces (and the processes in them), root-namespace links and work
 * directories of runs whose runner is gone. A live run is left alone unless `force`.
 */
export async function cleanupLeftovers (prefix: string = RUN_PREFIX, force = false): Promise<CleanupReport> {
  if (!prefix.startsWith(RUN_PREFIX)) throw new Error(`a cleanup prefix starts with ${RUN_PREFIX}, not ${prefix}`)
  const report: CleanupReport = { removedRuns: [], skippedLiveRuns: [], problems: [] }
  const runIdOf = (name: string): string => name.slice(0, RUN_PREFIX.length + 5)
  const leftovers = await findLeftovers(prefix)
  const runIds = new Set([...leftovers.namespaces, ...leftovers.links].map(runIdOf))
  let stateFiles: string[] = []
  try { stateFiles = await readdir(join(runsRoot(), 'state')) } catch { /* none */ }
  for (const file of stateFiles) if (file.startsWith(prefix) && file.endsWith('.json')) runIds.add(file.slice(0, -'.json'.length))
  for (const runId of [...runIds].sort()) {
    const state = await readRunState(runId)
    if (!force && await runnerAlive(state)) { report.skippedLiveRuns.push(runId); continue }
    // Hosts first, switch last: the switch holds the other ends of the hosts' links.
    const namespaces = leftovers.namespaces.filter(ns => runIdOf(ns) === runId).sort((a, b) => Number(a.endsWith('-sw')) - Number(b.endsWith('-sw')))
    for (const ns of namespaces) report.problems.push(...await removeNetns(ns))
    for (const link of leftovers.links.filter(l => runIdOf(l) === runId)) {
      const result = await run(['ip', 'link', 'del', link], { allowFailure: true })
      if (result.code !== 0) report.problems.push(`ip link del ${link}: ${result.stderr.trim()}`)
    }
    if (state !== undefined && state.workDir.includes(runId)) await rm(state.workDir, { recursive: true, force: true })
    await rm(join(runsRoot(), runId), { recursive: true, force: true })
    await removeRunState(runId)
    report.removedRuns.push(runId)
  }
  return report
}
