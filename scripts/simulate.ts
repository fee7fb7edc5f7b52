// The swarm simulator (issue #5): one bundle spreading from a gateway to N-1 edges, every
// edge running the daemon's own Scheduler over simulated links, for several swarm sizes.
//
//   node --import tsx scripts/simulate.ts [--nodes 10,100,1000,5000] [--size 64MiB] [--rate 20mbit]
//        [--delay 10ms] [--neighbours 20] [--seed 1] [--runs 1] [--out DIR]   (--help for the what-ifs)
//
// Prints, per size: the last and the median edge's completion time over the lower bound
// (bundle ÷ link rate), the gateway's upload over the bundle size, duplicate chunk transfers,
// and the simulation's own wall-clock and CPU time; then the goals. With --out,
// writes DIR/results.json and DIR/plot.svg. The model and its assumptions are described at
// the top of scripts/simulate/swarm-sim.ts.
import '../src/polyfill.js'
import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseSimulateArgs, USAGE, UsageError, type SimulateOptions } from './simulate/options.js'
import { plotSvg } from './simulate/plot.js'
import { checkGoals, goalLines, summarise, table, timelineTable, type GoalCheck, type SizeSummary } from './simulate/report.js'
import { DAEMON_CONSTANTS, simulate, type SimResult } from './simulate/swarm-sim.js'

const EXIT_OK = 0
const EXIT_USAGE = 2
const REPO = dirname(dirname(fileURLToPath(import.meta.url)))

export async function main (argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseSimulateArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`simulate: ${err.message}\n\n${USAGE}`)
    return EXIT_USAGE
  }
  if (parsed.kind === 'help') {
    process.stdout.write(USAGE)
    return EXIT_OK
  }
  const { options } = parsed
  const results: SimResult[] = []
  for (const nodes of options.sizes) {
    for (let run = 0; run < options.runs; run++) {
      const seed = options.base.seed + run
      process.stderr.write(`simulating ${nodes} nodes, seed ${seed}…`)
      const result = simulate({ ...options.base, seed, nodes })
      const reasons = Object.entries(result.gatewayExtraCopies.reasons).map(([why, n]) => `${why} ${n}`).join(', ')
      process.stderr.write(` ${(result.wallMs / 1000).toFixed(1)} s (${result.events.toLocaleString('en-US')} events); ` +
        `${result.lastOverLowerBound}x, gateway ${result.gatewayUploadOverBundle} copies, seeded at ${result.gatewaySeededS} s` +
        (reasons === '' ? '' : `, extra copies: ${reasons}`) + '\n')
      results.push(result)
      if (result.timeline !== undefined) process.stdout.write(timelineTable(result) + '\n\n')
    }
  }
  const summaries = summarise(results)
  const checks = checkGoals(summaries)
  const b = options.base
  process.stdout.write(`bundle ${b.bundleBytes} bytes in ${results[0]?.chunks ?? '?'} chunks (${results[0]?.objects ?? '?'} objects), ` +
    `links ${b.rateBitsPerSecond / 1e6} Mbit/s up and down, ${b.delayMs} ms one way, lower bound ${results[0]?.lowerBoundS ?? '?'} s, ` +
    (options.runs > 1 ? `seeds ${b.seed}–${b.seed + options.runs - 1} (medians, range in brackets)\n\n` : `seed ${b.seed}\n\n`))
  process.stdout.write(table(summaries) + '\n\n' + goalLines(checks) + '\n')
  if (options.out !== undefined) await writeOutputs(options, results, summaries, checks)
  return EXIT_OK
}

async function writeOutputs (options: SimulateOptions, results: SimResult[], summaries: SizeSummary[], checks: GoalCheck[]): Promise<void> {
  const dir = options.out as string
  await mkdir(dir, { recursive: true })
  const b = options.base
  const document = {
    generatedAt: new Date().toISOString(),
    source: provenance(),
    config: { ...b, sizes: options.sizes, runs: options.runs, daemonConstants: DAEMON_CONSTANTS },
    goals: checks,
    summaries,
    results,
  }
  await writeFile(join(dir, 'results.json'), JSON.stringify(document, null, 2) + '\n')
  const title = `shoal swarm simulation: ${(b.bundleBytes / 2 ** 20).toFixed(0)} MiB bundle, ${b.rateBitsPerSecond / 1e6} Mbit/s links, ` +
    `${b.delayMs} ms, ${b.neighbours} neighbours, ` + (options.runs > 1 ? `seeds ${b.seed}–${b.seed + options.runs - 1}` : `seed ${b.seed}`)
  await writeFile(join(dir, 'plot.svg'), plotSvg(summaries, title))
  process.stdout.write(`\nwrote ${join(dir, 'results.json')} and ${join(dir, 'plot.svg')}\n`)
}

/** The commit the scheduler came from, and whether src/swarm had uncommitted changes. */
function provenance (): { commit?: string, swarmChanges?: string[] } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim()
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src/swarm', 'src/manifest'], { cwd: REPO, encoding: 'utf8' })
    return { commit, swarmChanges: status.split('\n').filter(line => line.trim() !== '') }
  } catch {
    return {}
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
    process.stderr.write(`simulate: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
