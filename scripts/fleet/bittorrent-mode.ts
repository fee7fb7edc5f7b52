// The BitTorrent baseline: opentracker and a seeding aria2c on the gateway, an aria2c on
// every edge started at the same moment, each seeding on once it is complete. It is the
// peer-to-peer yardstick for shoal on the same bed in the same hour: same links, same
// bundle files, same counters (link bytes, CPU, RSS).
//
// Debian: `apt-get install aria2 opentracker`. The benchmark only; no test needs them.
import { watch } from 'node:fs'
import { access, chmod, mkdir, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { Host } from './bed.js'
import { compareWithSource } from './bundle.js'
import { EdgeRunner } from './edges.js'
import { inNetns, run, waitFor, type Service } from './proc.js'
import type { ProcessResult } from './results.js'
import { infoHashQuery, makeTorrent } from './torrent.js'
import { runTransfer, type ModeContext, type ModeOutcome, type NodeOutcome } from './transfer.js'

export const TRACKER_PORT = 6969
export const PEER_PORT = 6881
/** The piece size the baseline used; BEP 3 clients all take it. */
export const PIECE_BYTES = 1024 * 1024
const TRACKER_NAME = 'tracker'
const SEED_TIMEOUT_MS = 30_000

/**
 * aria2c as a plain swarm member: tracker only (no DHT, no local discovery: the bed has
 * nothing for them to find), no preallocation (shoal's receive path writes as it goes),
 * seeding forever (ratio 0), quiet console (printing progress would cost CPU we then
 * charge to BitTorrent), no IPv6 (the bed's namespaces have none).
 */
const ARIA2_FLAGS = [
  '--seed-ratio=0.0', '--enable-dht=false', '--enable-dht6=false', '--bt-enable-lpd=false', '--disable-ipv6=true',
  `--listen-port=${PEER_PORT}`, '--file-allocation=none', '--summary-interval=0', '--show-console-readout=false',
  '--console-log-level=warn', '--auto-file-renaming=false', '--allow-overwrite=true',
]

export async function runBittorrentMode (context: ModeContext): Promise<ModeOutcome> {
  const { bed, services, sampler, source, workDir, logDir, signal } = context
  const [gateway, ...edges] = bed.hosts
  if (gateway === undefined) throw new Error('no gateway host')

  const torrent = await makeTorrent(source.layout, { announce: `http://${gateway.ip}:${TRACKER_PORT}/announce`, pieceBytes: PIECE_BYTES, signal })
  const torrentPath = join(workDir, 'bundle.torrent')
  await writeFile(torrentPath, torrent.metainfo)
  context.log(`torrent ${torrent.infoHash.toString('hex')}: ${torrent.pieceCount} pieces of ${PIECE_BYTES} bytes`)

  // opentracker chroots into its directory and drops root for "nobody": the directory and
  // whitelist (Debian builds it whitelist-only) must be readable to that user.
  const trackerDir = join(workDir, 'tracker')
  await mkdir(trackerDir, { recursive: true })
  await writeFile(join(trackerDir, 'whitelist'), torrent.infoHash.toString('hex') + '\n')
  await writeFile(join(trackerDir, 'opentracker.conf'), 'access.whitelist /whitelist\n')
  await chmod(trackerDir, 0o755)
  const tracker = await services.start(TRACKER_NAME, inNetns(gateway.ns, [
    'opentracker', '-i', gateway.ip, '-p', String(TRACKER_PORT), '-P', String(TRACKER_PORT), '-d', trackerDir, '-f', join(trackerDir, 'opentracker.conf'),
  ]), { logFile: join(logDir, 'n0.tracker.log') })
  sampler.watch(TRACKER_NAME, tracker.pid)

  // The gateway holds the layout as generated; aria2c seeds it in place without re-hashing.
  context.log(`seeding from ${gateway.ip}`)
  const seeder = await services.start('n0', inNetns(gateway.ns, ['aria2c', ...ARIA2_FLAGS, '--bt-seed-unverified=true', '-d', dirname(source.layout), torrentPath]),
    { logFile: join(logDir, 'n0.aria2c.log') })
  sampler.watch('n0', seeder.pid)
  const scrape = `/scrape?info_hash=${infoHashQuery(torrent.infoHash)}`
  await waitFor('the tracker to list the gateway as a seed', async () => {
    for (const [name, service] of [['opentracker', tracker], ['the seeding aria2c', seeder]] as Array<[string, Service]>) {
      if (!service.running) throw new Error(`${name} exited (see ${logDir})`)
    }
    return seedCount(await httpGet(gateway, scrape, signal)) >= 1 ? true : undefined
  }, { timeoutMs: SEED_TIMEOUT_MS, signal })

  const downloads = new Map<Host, string>()
  const clients = new Map<string, Service>()
  const runners = edges.map((host, i) => {
    const name = `n${i + 1}`
    const nodeDir = join(workDir, 'nodes', name)
    downloads.set(host, join(nodeDir, basename(source.layout)))
    return new EdgeRunner(host, name, {
      attempt: async attemptSignal => {
        await mkdir(nodeDir, { recursive: true })
        const doneFile = join(nodeDir, 'complete')
        // aria2c runs this hook when the last piece is verified and it turns to seeding:
        // the edge's completion, while the process goes on serving the others.
        const hook = join(nodeDir, 'on-complete.sh')
        await writeFile(hook, `#!/bin/sh\n: > '${doneFile}.tmp' && mv '${doneFile}.tmp' '${doneFile}'\n`, { mode: 0o755 })
        const client = await services.start(name, inNetns(host.ns, ['aria2c', ...ARIA2_FLAGS, `--on-bt-download-complete=${hook}`, '-d', nodeDir, torrentPath]),
          { logFile: join(logDir, `${name}.aria2c.log`) })
        clients.set(name, client)
        sampler.watch(name, client.pid)
        await fileAppears(doneFile, client, AbortSignal.any([attemptSignal, signal]))
      },
    })
  })

  const transfer = await runTransfer({ context, runners, watched: [TRACKER_NAME, 'n0', ...runners.map(r => r.name)] })
  // Seeding after the last completion is not part of the run; stop before reading the copies.
  await Promise.all([seeder, tracker, ...clients.values()].map(async service => { await service.stop(5000) }))

  const cpuOver = (name: string): number | null => {
    const end = transfer.cpuAtEnd.get(name)
    return end === undefined || sampler.usage(name) === undefined ? null : end - (transfer.cpuAtStart.get(name) ?? 0)
  }
  const nodes = new Map<Host, NodeOutcome>()
  nodes.set(gateway, { role: 'gateway', name: 'n0', verified: true, problems: [], cpuSeconds: cpuOver('n0'), peakRssBytes: sampler.usage('n0')?.peakRssBytes ?? null })
  for (const runner of runners) {
    const problems = runner.done ? await compareWithSource(source, downloads.get(runner.host) ?? '') : [`never completed: ${runner.attemptErrors.join('; ') || 'no attempt finished'}`]
    nodes.set(runner.host, {
      role: 'edge', name: runner.name, verified: runner.done && problems.length === 0, problems,
      // The whole client: it starts with the pull, so its start-up is in the transfer like a skopeo's.
      cpuSeconds: cpuOver(runner.name),
      peakRssBytes: sampler.usage(runner.name)?.peakRssBytes ?? null,
    })
  }
  const processes: ProcessResult[] = [
    { name: 'opentracker', node: 'n0', cpuSeconds: cpuOver(TRACKER_NAME), peakRssBytes: sampler.usage(TRACKER_NAME)?.peakRssBytes ?? null },
    ...[gateway, ...edges].map(host => {
      const node = nodes.get(host)
      return { name: `aria2c (${node?.role ?? 'edge'})`, node: node?.name ?? '?', cpuSeconds: node?.cpuSeconds ?? null, peakRssBytes: node?.peakRssBytes ?? null }
    }),
  ]
  return { transfer, nodes, processes, faults: [], problems: [] }
}

/** Resolves once `path` exists; rejects if the client exits first or `signal` aborts. */
async function fileAppears (path: string, client: Service, signal: AbortSignal): Promise<void> {
  const exists = async (): Promise<boolean> => await access(path).then(() => true, () => false)
  await new Promise<void>((resolve, reject) => {
    let settled = false
    const finish = (err?: Error): void => {
      if (settled) return
      settled = true
      watcher.close()
      signal.removeEventListener('abort', onAbort)
      if (err === undefined) resolve()
      else reject(err)
    }
    const check = (): void => { void exists().then(yes => { if (yes) finish() }) }
    const onAbort = (): void => {
      void client.stop(2000)
      finish(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)))
    }
    // The hook renames its file into place: one event in the directory, no polling.
    const watcher = watch(dirname(path), check)
    signal.addEventListener('abort', onAbort, { once: true })
    void client.done.then(async () => {
      if (!await exists()) finish(new Error(`aria2c exited before completing (see its log)`))
    })
    // Created before the watcher started: seen here.
    check()
    if (signal.aborted) onAbort()
  })
}

/** One HTTP/1.0 GET from inside the host's namespace (bash's /dev/tcp; no client needed). */
async function httpGet (host: Host, path: string, signal: AbortSignal): Promise<string> {
  const script = `exec 3<>/dev/tcp/${host.ip}/${TRACKER_PORT} && printf 'GET %s HTTP/1.0\\r\\n\\r\\n' "$1" >&3 && cat <&3`
  const { stdout } = await run(inNetns(host.ns, ['bash', '-c', script, 'get', path]), { signal, timeoutMs: 5000, allowFailure: true })
  return stdout
}

/** The "complete" count in a tracker's bencoded scrape answer (0 when absent). */
export function seedCount (scrapeAnswer: string): number {
  const match = /8:completei(\d+)e/.exec(scrapeAnswer)
  return match?.[1] === undefined ? 0 : Number(match[1])
}
