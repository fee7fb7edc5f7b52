// How fast is `shoal push` next to copying and hashing the same tree?
//
//   node --import tsx scripts/bench-push.ts [--size-mb 1024] [--runs 5] [--dir DIR] [--keep] [--cpu-prof DIR]
//                                           [--small-files N [--small-file-kib 4]] [--baseline CHECKOUT]
//
// Generates one OCI image layout of about --size-mb (gen-images' app1: the base layer
// is that size) or, with --small-files, a tree of N files of --small-file-kib each (distinct
// random bytes, 100 to a directory), then times, --runs times each and interleaved so that
// noise falls on all of them alike, each into a fresh directory on the same filesystem:
//   cp -r        a copy of the tree (into the page cache: the kernel writes it out later)
//   cp -r; sync  the same made durable, as a push is (it fsyncs every object before commit)
//   b3sum        BLAKE3 of every file (the b3sum program, all files as arguments)
//   push (CLI)   `node bin/shoal.js --data FRESH push LAYOUT`, node's start-up included
//   push (store) pushPath in a child process, timed inside it (no start-up)
//   with --baseline CHECKOUT, both pushes again from another checkout of shoal (say
//   `git worktree add /tmp/base HEAD~3` with node_modules linked in), to compare code
//   before and after a change in the same run, on the same noise
// and prints medians, throughput, the ratios to cp -r and b3sum, CPU time (user + system:
// steadier than wall time on a shared machine) and each push's peak RSS (getrusage's maxrss,
// via GNU time or inside the child). Dirty pages are flushed (`sync`,
// untimed) before each timed step, so one step's writeback does not land in the next.
// Then, unless --no-breakdown, it times the parts of a push's inner loop (read, copy,
// BLAKE3 whole and per chunk, sha256, fsync: the sequential loop ingest.ts had) on the largest
// file, then ingestFile itself as it is now (pipelined, sha256 on a hashing thread), so the
// table says where a push's time goes and what the pipeline saves of it.
// Goals (issue #2): push within 1.5x of cp -r, peak RSS under 150 MB.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { blake3Hex, createBlake3, createSha256 } from '../src/hash/index.js'
import { generateImages } from './gen-images.js'
import { median, timed } from './timed-run.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
const SHOAL_BIN = fileURLToPath(new URL('../bin/shoal.js', import.meta.url))
const THIS_SCRIPT = fileURLToPath(import.meta.url)
const SMALL_FILES_PER_DIR = 100
const GOAL_RATIO_TO_CP = 1.5
const GOAL_PEAK_RSS_MB = 150

interface Options { sizeMb: number, runs: number, dir?: string, keep: boolean, cpuProf?: string, fsync: boolean, breakdown: boolean, smallFiles?: number, smallFileKib: number, baseline?: string }

/** Wall time, and CPU time (user + system) where known: on a shared machine CPU time is the steadier figure. */
interface Sample { seconds: number, cpuSeconds?: number, peakRssMb?: number }

/** `--child-push LAYOUT DATA`: one in-process push, reported as JSON on stdout. */
async function childPush (layout: string, data: string, fsync: boolean): Promise<void> {
  const { openStore, pushPath } = await import('../src/store/index.js')
  const started = performance.now()
  const cpuStart = process.cpuUsage()
  const store = await openStore({ dir: data, fsync })
  let bundleId: string
  try {
    bundleId = (await pushPath(store, layout)).bundleId
  } finally {
    await store.close()
  }
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuStart)
  // maxRSS is in KiB (getrusage ru_maxrss).
  process.stdout.write(JSON.stringify({ seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssMb: process.resourceUsage().maxRSS / 1024, bundleId }) + '\n')
}

function parseArgs (argv: string[]): Options {
  const options: Options = { sizeMb: 1024, runs: 5, keep: false, fsync: true, breakdown: true, smallFileKib: 4 }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (): string => {
      const next = argv[++i]
      if (next === undefined) throw new Error(`${arg ?? ''} needs a value`)
      return next
    }
    if (arg === '--size-mb') options.sizeMb = Number(value())
    else if (arg === '--runs') options.runs = Number(value())
    else if (arg === '--dir') options.dir = value()
    else if (arg === '--keep') options.keep = true
    else if (arg === '--cpu-prof') options.cpuProf = value()
    else if (arg === '--no-fsync') options.fsync = false
    else if (arg === '--no-breakdown') options.breakdown = false
    else if (arg === '--small-files') options.smallFiles = Number(value())
    else if (arg === '--small-file-kib') options.smallFileKib = Number(value())
    else if (arg === '--baseline') options.baseline = value()
    else throw new Error(`unexpected argument ${arg ?? ''}; usage: bench-push.ts [--size-mb 1024] [--runs 5] [--dir DIR] [--keep] [--cpu-prof DIR] [--no-fsync] [--no-breakdown] [--small-files N [--small-file-kib 4]] [--baseline CHECKOUT]`)
  }
  if (options.smallFiles !== undefined && !(Number.isInteger(options.smallFiles) && options.smallFiles > 0)) throw new Error('--small-files must be a whole number ≥ 1')
  if (!(options.smallFileKib > 0)) throw new Error('--small-file-kib must be positive')
  if (!(options.sizeMb > 0)) throw new Error('--size-mb must be positive')
  if (!Number.isInteger(options.runs) || options.runs < 1) throw new Error('--runs must be a whole number ≥ 1')
  return options
}

async function listFiles (root: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name))
  }
  return out.sort()
}

async function flushDirtyPages (): Promise<void> {
  await execFileAsync('sync')
}

/** gen-images' app1 with a base layer of `sizeMb`; returns the layout's directory. */
async function generateLayout (work: string, sizeMb: number): Promise<string> {
  process.stderr.write(`bench-push: generating a ${sizeMb} MiB image layout in ${work}\n`)
  const generated = await generateImages(join(work, 'images'), { baseBytes: Math.round(sizeMb * MIB), seed: 1 })
  // Only app1 is measured; the other layouts would only take disk space.
  for (const name of ['app2', 'app3', 'multi']) await rm(generated.layouts[name]!, { recursive: true, force: true })
  return generated.layouts.app1!
}

/** `count` files of `bytes` random bytes each (all distinct objects), SMALL_FILES_PER_DIR to a directory. */
async function generateSmallFiles (root: string, count: number, bytes: number): Promise<string> {
  process.stderr.write(`bench-push: generating ${count} files of ${bytes} bytes in ${root}\n`)
  for (let i = 0; i < count; i++) {
    const dir = join(root, `d${String(Math.floor(i / SMALL_FILES_PER_DIR)).padStart(4, '0')}`)
    if (i % SMALL_FILES_PER_DIR === 0) await mkdir(dir, { recursive: true })
    await writeFile(join(dir, `f${String(i).padStart(6, '0')}`), randomBytes(bytes))
  }
  return root
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  if (argv[0] === '--child-push') {
    await childPush(argv[1]!, argv[2]!, argv[3] !== 'no-fsync')
    return
  }
  const options = parseArgs(argv)
  const work = options.dir ?? await mkdtemp(join(tmpdir(), 'shoal-bench-push-'))
  try {
    const layout = options.smallFiles !== undefined
      ? await generateSmallFiles(join(work, 'small'), options.smallFiles, options.smallFileKib * 1024)
      : await generateLayout(work, options.sizeMb)
    const files = await listFiles(layout)
    let bytes = 0
    for (const file of files) bytes += (await stat(file)).size
    process.stderr.write(`bench-push: ${files.length} files, ${(bytes / MIB).toFixed(1)} MiB; ${options.runs} runs each${options.fsync ? '' : ' (store without fsync)'}\n`)

    const samples: Record<string, Sample[]> = { 'cp -r': [], 'cp -r; sync': [], b3sum: [], 'shoal push (CLI)': [], 'shoal push (store)': [] }
    if (options.baseline !== undefined) {
      samples['baseline push (CLI)'] = []
      samples['baseline push (store)'] = []
    }
    const bundleIds = new Set<string>()
    const scratch = join(work, 'scratch')
    for (let run = 0; run < options.runs; run++) {
      await rm(scratch, { recursive: true, force: true })
      await flushDirtyPages()

      await mkdir(scratch, { recursive: true })
      samples['cp -r']!.push(await timed('cp', ['-r', layout, join(scratch, 'copy')]))
      await flushDirtyPages()
      samples['cp -r; sync']!.push(await timed('sh', ['-c', 'cp -r "$0" "$1" && sync', layout, join(scratch, 'copy-synced')]))
      await flushDirtyPages()

      samples.b3sum!.push(await timed('b3sum', files))
      await flushDirtyPages()

      const checkouts: Array<[string, string, string]> = [['shoal push', SHOAL_BIN, THIS_SCRIPT]]
      if (options.baseline !== undefined) checkouts.push(['baseline push', join(options.baseline, 'bin', 'shoal.js'), join(options.baseline, 'scripts', 'bench-push.ts')])
      // Which checkout goes first alternates, so that neither always runs right after cp and b3sum.
      if (run % 2 === 1) checkouts.reverse()
      for (const [label, bin, script] of checkouts) {
        const cliData = join(scratch, 'data-cli')
        const cli = await timed(process.execPath, [bin, '--data', cliData, 'push', layout])
        bundleIds.add(cli.stdout.trim())
        samples[`${label} (CLI)`]!.push(cli)
        await rm(cliData, { recursive: true, force: true })
        await flushDirtyPages()

        const storeData = join(scratch, 'data-store')
        const profArgs = options.cpuProf !== undefined && run === 0 && label === 'shoal push' ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProf] : []
        const child = await timed(process.execPath, [...profArgs, '--import', 'tsx', script, '--child-push', layout, storeData, options.fsync ? 'fsync' : 'no-fsync'])
        const inner = JSON.parse(child.stdout) as { seconds: number, cpuSeconds: number, peakRssMb: number, bundleId: string }
        bundleIds.add(inner.bundleId)
        samples[`${label} (store)`]!.push({ seconds: inner.seconds, cpuSeconds: inner.cpuSeconds, peakRssMb: inner.peakRssMb })
        await rm(storeData, { recursive: true, force: true })
        await flushDirtyPages()
      }
      process.stderr.write(`bench-push: run ${run + 1}/${options.runs}: ${Object.entries(samples).map(([name, s]) => `${name} ${s[s.length - 1]!.seconds.toFixed(2)} s`).join(', ')}\n`)
    }
    await rm(scratch, { recursive: true, force: true })
    if (bundleIds.size !== 1) throw new Error(`pushes of one tree gave different bundle IDs: ${[...bundleIds].join(', ')}`)
    printTable(samples, bytes, options)
    if (options.breakdown) await printBreakdown(files, scratch, options.runs)
  } finally {
    if (!options.keep && options.dir === undefined) await rm(work, { recursive: true, force: true })
  }
}

function printTable (samples: Record<string, Sample[]>, bytes: number, options: Options): void {
  const med = (name: string, pick: (s: Sample) => number | undefined): number | undefined => {
    const values = samples[name]!.map(pick).filter((v): v is number => v !== undefined)
    return values.length > 0 ? median(values) : undefined
  }
  const cp = med('cp -r', s => s.seconds)!
  const b3 = med('b3sum', s => s.seconds)!
  const cpCpu = med('cp -r', s => s.cpuSeconds)
  const header = ['operation', 'median s', 'MiB/s', '÷ cp -r', '÷ b3sum', 'CPU s', 'CPU ÷ cp -r', 'peak RSS MB', 'runs (s)']
  const rows = Object.entries(samples).map(([name, runs]) => {
    const m = med(name, s => s.seconds)!
    const cpu = med(name, s => s.cpuSeconds)
    const compared = name !== 'cp -r' && name !== 'b3sum'
    const rss = runs.map(s => s.peakRssMb).filter((v): v is number => v !== undefined)
    return [
      name,
      m.toFixed(2),
      (bytes / MIB / m).toFixed(0),
      compared ? (m / cp).toFixed(2) : '',
      compared ? (m / b3).toFixed(2) : '',
      cpu !== undefined ? cpu.toFixed(2) : '',
      compared && cpu !== undefined && cpCpu !== undefined ? (cpu / cpCpu).toFixed(2) : '',
      name.includes('push') && rss.length > 0 ? Math.max(...rss).toFixed(0) : '',
      runs.map(s => s.seconds.toFixed(2)).join(' '),
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(' | ') + ' |'
  const tree = options.smallFiles !== undefined ? `${options.smallFiles} files of ${options.smallFileKib} KiB` : `${(bytes / MIB).toFixed(0)} MiB OCI layout`
  process.stdout.write(`\nshoal push benchmark: ${tree}, ${options.runs} runs, medians${options.fsync ? '' : ', store fsync off'}\n`)
  process.stdout.write(line(header) + '\n')
  process.stdout.write('|' + widths.map(w => '-'.repeat(w + 2)).join('|') + '|\n')
  for (const row of rows) process.stdout.write(line(row) + '\n')
  const push = med('shoal push (CLI)', s => s.seconds)!
  const rss = Math.max(...samples['shoal push (CLI)']!.map(s => s.peakRssMb ?? 0), ...samples['shoal push (store)']!.map(s => s.peakRssMb ?? 0))
  process.stdout.write(`\ngoals: push (CLI) ≤ ${GOAL_RATIO_TO_CP}x cp -r: ${push / cp <= GOAL_RATIO_TO_CP ? 'met' : 'NOT met'} (${(push / cp).toFixed(2)}x); ` +
    `peak RSS < ${GOAL_PEAK_RSS_MB} MB: ${rss < GOAL_PEAK_RSS_MB ? 'met' : 'NOT met'} (${rss.toFixed(0)} MB)\n`)
}

interface LoopParts { copy: boolean, blake3: boolean, sha256: boolean, fsync: boolean }

/** One pass of ingest.ts's loop over `source` with only some of its parts, in seconds. */
async function ingestLoop (source: string, copyTo: string, parts: LoopParts): Promise<number> {
  const started = performance.now()
  const input = await open(source, 'r')
  const output = parts.copy ? await open(copyTo, 'w') : undefined
  try {
    const buffer = Buffer.allocUnsafe(MIB)
    const whole = createBlake3()
    const sha = createSha256()
    for (;;) {
      const { bytesRead } = await input.read(buffer, 0, buffer.length, null)
      if (bytesRead === 0) break
      const piece = buffer.subarray(0, bytesRead)
      if (parts.blake3) { whole.update(piece); blake3Hex(piece) }
      if (parts.sha256) sha.update(piece)
      if (output !== undefined) await output.write(piece)
    }
    if (output !== undefined && parts.fsync) await output.sync()
  } finally {
    await input.close()
    await output?.close()
  }
  const seconds = (performance.now() - started) / 1000
  await rm(copyTo, { force: true })
  return seconds
}

/** Where a push's time goes: the loop's parts added one at a time, on the largest file. */
async function printBreakdown (files: string[], scratch: string, runs: number): Promise<void> {
  let largest = files[0]!
  for (const file of files) if ((await stat(file)).size > (await stat(largest)).size) largest = file
  const size = (await stat(largest)).size
  await mkdir(scratch, { recursive: true })
  const steps: Array<[string, LoopParts]> = [
    ['read', { copy: false, blake3: false, sha256: false, fsync: false }],
    ['+ copy (write)', { copy: true, blake3: false, sha256: false, fsync: false }],
    ['+ BLAKE3 whole and per chunk', { copy: true, blake3: true, sha256: false, fsync: false }],
    ['+ sha256 (blobs)', { copy: true, blake3: true, sha256: true, fsync: false }],
    ['+ fsync (= old ingest.ts)', { copy: true, blake3: true, sha256: true, fsync: true }],
  ]
  const now: Array<[string, { fsync: boolean }]> = [
    ['ingestFile now, no fsync', { fsync: false }],
    ['ingestFile now (= push)', { fsync: true }],
  ]
  const seconds = new Map<string, number[]>([...steps, ...now].map(([name]) => [name, []]))
  for (let run = 0; run < runs; run++) {
    for (const [name, parts] of steps) {
      await flushDirtyPages()
      seconds.get(name)!.push(await ingestLoop(largest, join(scratch, 'breakdown-copy'), parts))
    }
    for (const [name, parts] of now) {
      await flushDirtyPages()
      seconds.get(name)!.push(await ingestNow(largest, join(scratch, 'breakdown-copy'), parts.fsync))
    }
  }
  process.stdout.write(`\nwhere the time goes: the old sequential loop of ingest.ts on the largest file (${(size / MIB).toFixed(0)} MiB), parts added one at a time, then ingestFile as it is now; medians of ${runs}\n`)
  process.stdout.write('| loop                         | s/GiB | adds s/GiB |\n|------------------------------|-------|------------|\n')
  let previous = 0
  for (const [name] of steps) {
    const perGib = median(seconds.get(name)!) * 1024 * MIB / size
    process.stdout.write(`| ${name.padEnd(28)} | ${perGib.toFixed(2).padStart(5)} | ${(perGib - previous).toFixed(2).padStart(10)} |\n`)
    previous = perGib
  }
  for (const [name] of now) {
    const perGib = median(seconds.get(name)!) * 1024 * MIB / size
    process.stdout.write(`| ${name.padEnd(28)} | ${perGib.toFixed(2).padStart(5)} | ${''.padStart(10)} |\n`)
  }
}

/** One ingestFile of `source` as a push does it (copy, sha256 on a hashing thread), in seconds. */
async function ingestNow (source: string, copyTo: string, fsync: boolean): Promise<number> {
  // Loaded before the clock starts; the thread's start-up is timed, as a push pays it too.
  const { HashWorker } = await import('../src/store/hash-worker.js')
  const { ingestFile } = await import('../src/store/ingest.js')
  const hashWorker = new HashWorker()
  const started = performance.now()
  try {
    await ingestFile(source, { copyTo, sha256: true, fsync, hashWorker })
  } finally {
    await hashWorker.close()
  }
  const seconds = (performance.now() - started) / 1000
  await rm(copyTo, { force: true })
  return seconds
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench-push: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
