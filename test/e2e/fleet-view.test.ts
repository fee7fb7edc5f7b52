import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import type { FleetResponse } from '../../src/http/index.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'

/** Short heartbeats so stale shows in seconds: a neighbour's absence notice or 4 periods of silence mark a node stale, 16 drop it. */
const INTERVAL = '500ms'

/** `shoal fleet` on any node: every node, what it holds, and who went quiet. */
describe('the fleet view across daemons', () => {
  let work: string
  let images: Record<string, string>
  const daemons: DaemonProcess[] = []

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-fleet-view-'))
    images = (await generateImages(join(work, 'images'), { baseBytes: 1024 * 1024, seed: 11 })).layouts as Record<string, string>
  })

  afterAll(async () => {
    await Promise.all(daemons.map(async d => await d.kill()))
    await rm(work, { recursive: true, force: true })
  })

  async function start (name: string, args: string[]): Promise<DaemonProcess> {
    const daemon = await startDaemonProcess(join(work, name), ['--no-mdns', '--status-interval', INTERVAL, ...args])
    daemons.push(daemon)
    return daemon
  }

  async function fleet (daemon: DaemonProcess): Promise<FleetResponse> {
    const result = await shoal(undefined, ['--api', daemon.api, '--json', 'fleet'])
    expect(result.code, result.stderr).toBe(0)
    return JSON.parse(result.stdout) as FleetResponse
  }

  it('lists every node with what it holds, marks a stopped one stale, then forgets it', async () => {
    const gateway = await start('gateway', ['--gateway', '--label', 'site=hq'])
    const edgeA = await start('edge-a', ['--bootstrap', gateway.address, '--label', 'site=a'])
    const edgeB = await start('edge-b', ['--bootstrap', gateway.address, '--label', 'site=b'])

    const app1 = await shoalOk(undefined, ['--api', gateway.api, 'push', images.app1 ?? '', '--ref', 'registry.example.com/fleet/app1:1.0'])
    const app2 = await shoalOk(undefined, ['--api', gateway.api, 'push', images.app2 ?? ''])
    for (const [edge, id] of [[edgeA, app1], [edgeB, app1], [edgeB, app2]] as const) {
      const pulled = await shoal(undefined, ['--api', edge.api, 'pull', id], { timeoutMs: 60_000 })
      expect(pulled.code, pulled.stderr).toBe(0)
    }

    // edge-a is connected to the gateway only: what edge-b holds reaches it through the gateway.
    const holds = (view: FleetResponse, peerId: string): string[] => view.nodes.find(n => n.peerId === peerId)?.complete ?? []
    const view = await waitFor('edge-a listing every node with what it holds', async () => {
      const v = await fleet(edgeA)
      const done = holds(v, edgeB.peerId).includes(app2) && holds(v, edgeA.peerId).includes(app1) && holds(v, gateway.peerId).length === 2
      return done ? v : undefined
    }, 60_000)
    expect(view.known).toBe(3)
    expect(view.nodes.map(n => n.peerId).sort()).toEqual([gateway.peerId, edgeA.peerId, edgeB.peerId].sort())
    const byId = new Map(view.nodes.map(n => [n.peerId, n]))
    expect(byId.get(gateway.peerId)?.labels.site).toBe('hq')
    expect(byId.get(edgeB.peerId)?.labels.site).toBe('b')
    expect(byId.get(edgeB.peerId)?.labels.arch).toBeDefined()
    expect(new Set(holds(view, gateway.peerId))).toEqual(new Set([app1, app2]))
    expect(new Set(holds(view, edgeB.peerId))).toEqual(new Set([app1, app2]))
    expect(holds(view, edgeA.peerId)).toEqual([app1])
    expect(byId.get(edgeA.peerId)?.self).toBe(true)
    expect(byId.get(edgeB.peerId)?.freeBytes).toBeGreaterThan(0)
    expect(byId.get(edgeB.peerId)?.version).toMatch(/^\d+\.\d+\.\d+/)
    // The spread per bundle: app1 on all three, app2 on two, of three nodes.
    const spread = new Map(view.bundles.map(b => [b.id, b]))
    expect(spread.get(app1)).toMatchObject({ complete: 3, total: 3 })
    expect(spread.get(app2)).toMatchObject({ complete: 2, total: 3 })
    expect(spread.get(app1)?.refs).toEqual([])

    // The status page's JSON carries the same view; /metrics counts it.
    const page = await fetch(`http://${gateway.registry}/status.json`).then(async r => await r.json() as { fleet: FleetResponse })
    expect(page.fleet.known).toBe(3)
    // The gateway hears edge-a's status on its own schedule: edge-a's view being complete says
    // nothing of when the gateway learnt that edge-a finished app1 (CI once read it as partial).
    const metrics = await waitFor('the gateway counting app1 complete on all three nodes', async () => {
      const text = await fetch(`http://${gateway.registry}/metrics`).then(async r => await r.text())
      return text.includes(`shoal_fleet_bundle_nodes{bundle="${app1}",state="complete"} 3`) ? text : undefined
    }, 30_000)
    expect(metrics).toMatch(/^shoal_fleet_nodes\{state="live"\} 3$/m)

    // edge-b stops: the gateway loses it, cannot dial it and says so; edge-a marks it stale a
    // grace later (before its heartbeats are missed), then forgets it after 16 silent periods.
    expect(await edgeB.stop()).toBe(0)
    const stale = await waitFor('edge-b marked stale on edge-a', async () => {
      const v = await fleet(edgeA)
      return v.nodes.find(n => n.peerId === edgeB.peerId && n.stale)
    }, 60_000)
    expect(stale.lastSeenMs).toBeGreaterThan(0)
    const text = await shoalOk(undefined, ['--api', edgeA.api, 'fleet'])
    expect(text).toMatch(new RegExp(`${edgeB.peerId}\\s+STALE`))
    await waitFor('edge-b forgotten on edge-a', async () => (await fleet(edgeA)).nodes.some(n => n.peerId === edgeB.peerId) ? undefined : true, 60_000)
    const after = await fleet(edgeA)
    expect(after.nodes.map(n => n.peerId).sort()).toEqual([gateway.peerId, edgeA.peerId].sort())
    // Three daemons, two pushes, three pulls and a dozen CLI runs: 40 s alone at load 24, past 60 s beside other files.
  }, 180_000)
})
