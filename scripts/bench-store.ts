// How fast are shoal's bucket stores next to `aws s3 sync` of the same tree, in the same run?
//
//   node --import tsx scripts/bench-store.ts [--size-mb 1024] [--runs 3] [--dir DIR] [--aws PATH] [--keep]
//
// Generates gen-images' app1 layout with a base layer of --size-mb, starts s3rver (npm) on
// loopback in its own process (no signature-checking gate: it would hold every body), and
// times, --runs times each, interleaved so that noise falls on all alike:
//   upload    `aws s3 sync LAYOUT s3://bench/aws-N/`   vs  `shoal push --store s3://bench/shoal-N LAYOUT`
//             (shoal also hashes the tree first, as snapdir's push does, and verifies each byte it sends)
//   download  `aws s3 sync s3://bench/aws-N/ DIR`     vs  `shoal sync --from s3://bench/shoal-N --to DATA`
//             (shoal writes into a data dir: staged, hashed whole and per chunk, fsync'd, renamed)
//   bucket → bucket  `shoal sync --from s3://… --to s3://…` alone (every byte downloaded,
//             verified, uploaded: shoal never trusts a source it has not hashed). aws s3 sync
//             copies server-side (UploadPartCopy), which s3rver does not implement.
// and prints medians of wall time, throughput, CPU seconds and peak RSS (GNU time), and the
// ratio shoal/aws. Goal (issue #14): ≥ aws s3 sync's throughput with peak RSS ≤ 150 MB.
// s3rver itself (one Node process writing every object and its md5 to disk) is the ceiling
// both clients share; the machine is 2 shared cores, so figures move ±30% between runs.
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startS3Server } from '../test/helpers/s3-server.js'
import { generateImages } from './gen-images.js'
import { median, timed, type TimedSample as Sample } from './timed-run.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
const SHOAL_BIN = fileURLToPath(new URL('../bin/shoal.js', import.meta.url))
const GOAL_PEAK_RSS_MB = 150

interface Options { sizeMb: number, runs: number, dir?: string, aws: string, keep: boolean }

function parseArgs (argv: string[]): Options {
  const options: Options = { sizeMb: 1024, runs: 3, aws: 'aws', keep: false }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const value = (): string => argv[++i] ?? ''
    if (flag === '--size-mb') options.sizeMb = Number(value())
    else if (flag === '--runs') options.runs = Number(value())
    else if (flag === '--dir') options.dir = value()
    else if (flag === '--aws') options.aws = value()
    else if (flag === '--keep') options.keep = true
    else throw new Error(`unknown option ${String(flag)}`)
  }
  return options
}

async function treeBytes (root: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size
  return total
}

async function main (): Promise<void> {
  const options = parseArgs(process.argv.slice(2))
  const work = options.dir ?? await mkdtemp(join(tmpdir(), 'shoal-bench-store-'))
  process.stderr.write(`bench-store: generating a ${options.sizeMb} MiB image layout in ${work}\n`)
  const generated = await generateImages(join(work, 'images'), { baseBytes: Math.round(options.sizeMb * MIB), seed: 1 })
  for (const name of ['app2', 'app3', 'multi']) await rm(generated.layouts[name]!, { recursive: true, force: true })
  const layout = generated.layouts.app1!
  const bytes = await treeBytes(layout)
  const server = await startS3Server(join(work, 's3rver'), ['bench'], { checkSignatures: false })
  const env = { ...server.env, XDG_STATE_HOME: join(work, 'state') }
  const awsVersion = (await execFileAsync(options.aws, ['--version'])).stdout.trim()
  const aws = async (args: string[]): Promise<Sample> => await timed(options.aws, ['--endpoint-url', server.endpoint, '--only-show-errors', ...args], { env })
  const shoal = async (args: string[]): Promise<Sample> => await timed(process.execPath, [SHOAL_BIN, ...args], { env })
  const samples = new Map<string, Sample[]>()
  const add = (name: string, sample: Sample): void => { samples.set(name, [...samples.get(name) ?? [], sample]) }
  try {
    for (let run = 0; run < options.runs; run++) {
      process.stderr.write(`bench-store: run ${run + 1} of ${options.runs}\n`)
      await execFileAsync('sync')
      add('upload: aws s3 sync', await aws(['s3', 'sync', layout, `s3://bench/aws-${run}/`]))
      await execFileAsync('sync')
      const pushed = await shoal(['push', '--store', `s3://bench/shoal-${run}`, layout])
      add('upload: shoal push --store', pushed)
      const id = pushed.stdout.trim()
      await execFileAsync('sync')
      add('download: aws s3 sync', await aws(['s3', 'sync', `s3://bench/aws-${run}/`, join(work, `aws-down-${run}`)]))
      await execFileAsync('sync')
      add('download: shoal sync → data dir', await shoal(['--data', join(work, `data-${run}`), 'sync', '--id', id, '--from', `s3://bench/shoal-${run}`, '--to', join(work, `data-${run}`)]))
      await execFileAsync('sync')
      add('bucket→bucket: shoal sync (through, verified)', await shoal(['sync', '--id', id, '--from', `s3://bench/shoal-${run}`, '--to', `s3://bench/shoal-copy-${run}`]))
      await rm(join(work, `aws-down-${run}`), { recursive: true, force: true })
      await rm(join(work, `data-${run}`), { recursive: true, force: true })
    }
  } finally {
    await server.stop()
    if (!options.keep && options.dir === undefined) await rm(work, { recursive: true, force: true })
  }

  const mb = bytes / MIB
  process.stdout.write(`\nbench-store: ${mb.toFixed(0)} MiB tree (gen-images app1), s3rver on loopback, ${awsVersion}, medians of ${options.runs}\n\n`)
  process.stdout.write('| step | wall s | MiB/s | CPU s | peak RSS MB |\n|---|---:|---:|---:|---:|\n')
  const medians = new Map<string, { seconds: number, rss: number }>()
  for (const [name, list] of samples) {
    const seconds = median(list.map(s => s.seconds))
    const rss = Math.max(...list.map(s => s.peakRssMb ?? 0))
    medians.set(name, { seconds, rss })
    process.stdout.write(`| ${name} | ${seconds.toFixed(2)} | ${(mb / seconds).toFixed(0)} | ${median(list.map(s => s.cpuSeconds ?? 0)).toFixed(2)} | ${rss.toFixed(0)} |\n`)
  }
  const ratio = (shoalStep: string, awsStep: string): string => (medians.get(awsStep)!.seconds / medians.get(shoalStep)!.seconds).toFixed(2)
  process.stdout.write(`\nshoal's throughput / aws's: upload ${ratio('upload: shoal push --store', 'upload: aws s3 sync')}x, download ${ratio('download: shoal sync → data dir', 'download: aws s3 sync')}x (goal ≥ 1)\n`)
  const peak = Math.max(...[...samples].filter(([name]) => name.includes('shoal')).flatMap(([, list]) => list.map(s => s.peakRssMb ?? 0)))
  process.stdout.write(`shoal's peak RSS: ${peak.toFixed(0)} MB (goal ≤ ${GOAL_PEAK_RSS_MB})\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-store: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
