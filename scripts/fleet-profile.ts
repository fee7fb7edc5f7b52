// Where the daemons of a fleet run spent their main thread, phase by phase.
//
//   node --import tsx scripts/fleet.ts --nodes 8 … --cpu-prof DIR --out OUT
//   node --import tsx scripts/fleet-profile.ts OUT/results.json DIR [--top 12]
//
// Phases per daemon: start-up (spawn → answers status), idle (→ the pulls' common start),
// pulling (→ its own completion; the gateway: → the last), seeding (→ the last completion),
// after (checks and stop). Edges are summed and shown per daemon; the gateway apart.
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { addPhaseTimes, phaseReport, phaseWindows, SourceMapper, splitProfile, type CpuProfile, type Phase, type PhaseTime } from './fleet/profile.js'
import type { FleetResults } from './fleet/results.js'

async function main (argv: string[]): Promise<void> {
  const topAt = argv.indexOf('--top')
  const top = topAt >= 0 ? Number(argv[topAt + 1]) : 12
  const [resultsPath, profileDir] = argv.filter((a, i) => !a.startsWith('--') && (topAt < 0 || i !== topAt + 1))
  if (resultsPath === undefined || profileDir === undefined) throw new Error('usage: scripts/fleet-profile.ts RESULTS.json PROFILE_DIR [--top N]')
  const results = JSON.parse(await readFile(resultsPath, 'utf8')) as FleetResults
  const mapper = new SourceMapper()
  const sums = new Map<string, { times: Map<Phase, PhaseTime>, count: number }>()
  for (const node of results.perNode) {
    const dir = join(profileDir, node.name)
    const files = (await readdir(dir).catch(() => [])).filter(f => f.endsWith('.cpuprofile'))
    if (files.length === 0) {
      process.stderr.write(`no profile for ${node.name} in ${dir}\n`)
      continue
    }
    const windows = phaseWindows(node, results)
    const key = node.role === 'edge' ? 'edges' : node.role
    const sum = sums.get(key) ?? { times: new Map<Phase, PhaseTime>(), count: 0 }
    for (const file of files) {
      const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile
      addPhaseTimes(sum.times, await splitProfile(profile, windows, mapper))
    }
    sum.count++
    sums.set(key, sum)
    const cpu = `${node.startupCpuSeconds?.toFixed(2) ?? '—'} CPU-s start-up, ${node.cpuSeconds?.toFixed(2) ?? '—'} over the transfer (${node.cpuSecondsToCompletion?.toFixed(2) ?? '—'} to its own completion)`
    process.stdout.write(`${node.name} ${node.role}: ${cpu}\n`)
  }
  for (const [key, { times, count }] of sums) process.stdout.write('\n' + phaseReport(key, times, count, top) + '\n')
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`fleet-profile: ${(err as Error).message}\n`)
  process.exitCode = 1
})
