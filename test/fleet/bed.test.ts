import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Bed } from '../../scripts/fleet/bed.js'
import { defaultCacheDir } from '../../scripts/fleet/delay.js'
import { inNetns, run, Services } from '../../scripts/fleet/proc.js'
import { cleanupLeftovers, findLeftovers, newRunId } from '../../scripts/fleet/runs.js'
import { bedUnavailableReason } from './bed-support.js'

const unavailable = bedUnavailableReason([['ping', 'iputils-ping']])
const skipNote = unavailable === undefined ? '' : ` [skipped: ${unavailable}]`

interface Harness { bed: Bed, services: Services, dir: string }
const harnesses: Harness[] = []

async function upBed (init: { rateBitsPerSecond?: number, delayMs?: number }): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-bed-test-'))
  const services = new Services()
  const bed = new Bed({
    runId: newRunId(), hostCount: 2, rateBitsPerSecond: init.rateBitsPerSecond ?? 0, delayMs: init.delayMs ?? 0, lossPercent: 0,
    cacheDir: defaultCacheDir(), delayLogFile: join(dir, 'nfq-delay.log'), services,
  })
  const harness = { bed, services, dir }
  harnesses.push(harness)
  await bed.up()
  return harness
}

afterEach(async () => {
  for (const { bed, services, dir } of harnesses.splice(0)) {
    await services.stopAll()
    expect(await bed.destroy()).toEqual([])
    await rm(dir, { recursive: true, force: true })
    expect(await findLeftovers(bed.runId)).toEqual({ namespaces: [], links: [], iptablesRules: [], processes: [] })
  }
})

function rtts (pingOutput: string): number[] {
  return [...pingOutput.matchAll(/time=([\d.]+) ms/g)].map(m => Number(m[1]))
}

describe.skipIf(unavailable !== undefined)('fleet bed', () => {
  it(`delays every packet crossing the bridge, in both directions (--delay 50ms → fastest RTT 100–200 ms)${skipNote}`, async () => {
    const { bed } = await upBed({ delayMs: 50 })
    const [a, b] = bed.hosts
    if (a === undefined || b === undefined) throw new Error('two hosts expected')
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const { stdout } = await run(inNetns(from.ns, ['ping', '-n', '-c', '4', '-i', '0.2', '-W', '2', to.ip]))
      const times = rtts(stdout)
      expect(times).toHaveLength(4)
      // A busy machine only adds to a round trip, so the fastest of four says what the bed adds:
      // at least the delay each way, and not the delay twice in either direction (200 ms).
      expect(Math.min(...times)).toBeGreaterThanOrEqual(100)
      expect(Math.min(...times)).toBeLessThan(200)
    }
  })

  it(`leaves hosts unimpaired without --delay (RTT well under 100 ms)${skipNote}`, async () => {
    const { bed } = await upBed({})
    const [a, b] = bed.hosts
    if (a === undefined || b === undefined) throw new Error('two hosts expected')
    const { stdout } = await run(inNetns(a.ns, ['ping', '-n', '-c', '4', '-i', '0.2', '-W', '2', b.ip]))
    // The fastest of four, as above: a busy machine (or a first packet waiting on ARP, 1002 ms
    // seen in CI at load 16) only adds to a round trip; an added delay would show in every one.
    expect(Math.min(...rtts(stdout))).toBeLessThan(50)
  })

  it(`shapes a host's link: 4 MB at 8mbit take at least 3.5 s${skipNote}`, async () => {
    const { bed, services, dir } = await upBed({ rateBitsPerSecond: 8e6 })
    const [server, client] = bed.hosts
    if (server === undefined || client === undefined) throw new Error('two hosts expected')
    const bytes = 4_000_000
    const port = 7311
    const serverScript = `
      const net = require('node:net')
      const srv = net.createServer(socket => { socket.end(Buffer.alloc(${bytes}, 7)); srv.close() })
      srv.listen(${port}, '${server.ip}', () => console.log('listening'))`
    let listening: () => void = () => undefined
    const ready = new Promise<void>(resolve => { listening = resolve })
    const service = await services.start('sender', inNetns(server.ns, [process.execPath, '-e', serverScript]), {
      logFile: join(dir, 'sender.log'), onStdoutLine: line => { if (line === 'listening') listening() },
    })
    await Promise.race([ready, service.done.then(() => { throw new Error('the sender exited before listening') })])
    const clientScript = `
      const net = require('node:net')
      const t0 = performance.now()
      let received = 0
      net.connect(${port}, '${server.ip}').on('data', d => { received += d.length }).on('end', () => {
        console.log(JSON.stringify({ received, seconds: (performance.now() - t0) / 1000 }))
      })`
    const { stdout } = await run(inNetns(client.ns, [process.execPath, '-e', clientScript]), { timeoutMs: 30_000 })
    const { received, seconds } = JSON.parse(stdout) as { received: number, seconds: number }
    expect(received).toBe(bytes)
    // 4 MB at 1 MB/s is 4 s; the tbf burst lets a few KiB through early, hence 3.5.
    expect(seconds).toBeGreaterThanOrEqual(3.5)
    const counters = await bed.counters(client)
    expect(counters.rxBytes).toBeGreaterThan(bytes)
  })

  it(`--cleanup removes the namespaces and processes of a run whose runner is gone${skipNote}`, async () => {
    const services = new Services()
    const runId = newRunId()
    // A bed that is never destroyed and has no state file: what a runner killed with SIGKILL leaves.
    const bed = new Bed({ runId, hostCount: 2, rateBitsPerSecond: 8e6, delayMs: 0, lossPercent: 0, cacheDir: defaultCacheDir(), services })
    await bed.up()
    const host = bed.hosts[0]
    if (host === undefined) throw new Error('a host expected')
    const sleeper = await services.start('sleeper', inNetns(host.ns, ['sleep', '300']))
    expect((await findLeftovers(runId)).namespaces).toHaveLength(3)
    const report = await cleanupLeftovers(runId)
    expect(report).toEqual({ removedRuns: [runId], skippedLiveRuns: [], problems: [] })
    expect(await findLeftovers(runId)).toEqual({ namespaces: [], links: [], iptablesRules: [], processes: [] })
    expect((await sleeper.done).signal).toBe('SIGKILL')
    await services.stopAll()
  })
})
