// The fleet test bed: N hosts as network namespaces on one shaped bridge, a gateway
// and N-1 edges pulling one image at the same moment, in shoal or registry mode.
//
//   node --import tsx scripts/fleet.ts [--nodes 4] [--rate 20mbit] [--delay 10ms] [--loss 0]
//        [--size 64MiB | --bundle PATH] [--mode shoal|registry|bittorrent] [--faults none|kill|byzantine|partition]
//        [--out DIR] [--timeout 600] [--cpu-prof DIR] [--idle-seconds S]
//   node --import tsx scripts/fleet.ts --cleanup [PREFIX]
//
// Needs root. Everything the run creates is removed at the end, also on SIGINT/SIGTERM;
// `--cleanup` removes what a runner killed outright left behind.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseFleetArgs, USAGE, UsageError } from './fleet/options.js'
import { summaryTable } from './fleet/results.js'
import { runFleet } from './fleet/run.js'
import { cleanupLeftovers, RUN_PREFIX } from './fleet/runs.js'

const EXIT_OK = 0
const EXIT_FAILED = 1
const EXIT_USAGE = 2

export async function main (argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseFleetArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`fleet: ${err.message}\n\n${USAGE}`)
    return EXIT_USAGE
  }
  if (parsed.kind === 'help') {
    process.stdout.write(USAGE)
    return EXIT_OK
  }
  if (parsed.kind === 'cleanup') {
    const report = await cleanupLeftovers(parsed.prefix ?? RUN_PREFIX, parsed.force)
    process.stdout.write(JSON.stringify(report, null, 2) + '\n')
    return report.problems.length === 0 ? EXIT_OK : EXIT_FAILED
  }

  // First signal: abort the run, which tears everything down in its finally. Second: leave now.
  const controller = new AbortController()
  let signals = 0
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++
    if (signals === 1) {
      process.stderr.write(`fleet: ${signal}, tearing down (again to leave at once; then run --cleanup)\n`)
      controller.abort(new Error(`interrupted by ${signal}`))
    } else {
      process.exit(signal === 'SIGINT' ? 130 : 143)
    }
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const { results, outDir } = await runFleet(parsed.options, { signal: controller.signal })
    process.stdout.write(summaryTable(results) + '\n')
    process.stdout.write(`results: ${join(outDir, 'results.json')}, plot: ${join(outDir, 'plot.svg')}\n`)
    await writeFile(join(outDir, 'command.txt'), `scripts/fleet.ts ${argv.join(' ')}\n`)
    return results.allComplete && results.allVerified ? EXIT_OK : EXIT_FAILED
  } catch (err) {
    process.stderr.write(`fleet: ${controller.signal.aborted ? String((controller.signal.reason as Error).message) : (err as Error).message}\n`)
    if (process.env.FLEET_DEBUG === '1') process.stderr.write(`${(err as Error).stack ?? ''}\n`)
    return controller.signal.aborted ? 130 : EXIT_FAILED
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(code => { process.exitCode = code }, (err: unknown) => {
    process.stderr.write(`fleet: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = EXIT_FAILED
  })
}
