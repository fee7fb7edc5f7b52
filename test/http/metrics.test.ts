import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoalOk } from '../helpers/shoal-cli.js'

const MIB = 1024 * 1024

/** One sample of a scrape: `name{labels} value`, labels written as in the text format. */
function sample (text: string, name: string, labels = ''): number {
  const escaped = `${name}${labels === '' ? '' : `{${labels}}`}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const match = new RegExp(`^${escaped} ([0-9.e+-]+)$`, 'm').exec(text)
  return match?.[1] === undefined ? 0 : Number(match[1])
}

async function scrape (daemon: DaemonProcess): Promise<string> {
  const response = await fetch(`http://${daemon.registry}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return await response.text()
}

describe('/metrics on a running daemon', () => {
  let work: string
  let gateway: DaemonProcess
  let edge: DaemonProcess
  let bundleId: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-metrics-'))
    const images = await generateImages(join(work, 'images'), { baseBytes: 5 * MIB, seed: 5 })
    gateway = await startDaemonProcess(join(work, 'gateway'), ['--no-mdns', '--gateway'])
    bundleId = await shoalOk(undefined, ['--api', gateway.api, 'push', images.layouts.app1 ?? ''])
    edge = await startDaemonProcess(join(work, 'edge'), ['--no-mdns', '--bootstrap', gateway.address])
  })

  afterAll(async () => {
    await edge?.kill()
    await gateway?.kill()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  it('declares every metric under shoal_<module>_<thing>_<unit>, in prom-client\'s text format', async () => {
    const text = await scrape(gateway)
    const names = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(m => m[1] ?? '')
    expect(names.sort()).toEqual([
      'shoal_fleet_bundle_nodes', 'shoal_fleet_bundle_target_nodes', 'shoal_fleet_charges_total', 'shoal_fleet_nodes', 'shoal_fleet_statuses_dropped_total',
      'shoal_http_request_duration_seconds', 'shoal_http_requests_total', 'shoal_preheat_bundles_complete', 'shoal_preheat_bundles_wanted',
      'shoal_store_refs_evicted_total', 'shoal_swarm_bans_total', 'shoal_swarm_chunks_rejected_total', 'shoal_swarm_chunks_verified_total',
      'shoal_swarm_peer_offences_total', 'shoal_swarm_peers_connected', 'shoal_swarm_pull_duration_seconds', 'shoal_swarm_record_allowance_charges_total',
      'shoal_swarm_records_dropped_total', 'shoal_transfer_received_bytes_total', 'shoal_transfer_sent_bytes_total', 'shoal_upstream_pull_duration_seconds',
    ])
    // Our own registry: none of prom-client's default process metrics leak in.
    expect(text).not.toMatch(/^process_/m)
  })

  it('counts a swarm pull: bytes and chunks on both sides, the pull timed, the peer connected', async () => {
    // This 5 MiB pull once hung past the test's 60 s in a loaded CI run, with nothing to say why.
    onTestFailed(() => { console.log(`edge log:\n${edge.logs().slice(-8000)}\ngateway log:\n${gateway.logs().slice(-8000)}`) })
    const response = await edge.controlText('POST', '/api/v1/pull', { ref: bundleId })
    const last = JSON.parse(response.text.trim().split('\n').at(-1) ?? '{}') as { type?: string }
    expect(last.type).toBe('done')
    const status = await edge.status()
    const bundle = status.bundles.find(b => b.id === bundleId)
    expect(bundle?.complete).toBe(true)
    expect(status.stats.chunksFetchedTwice).toBe(0)

    const edgeText = await scrape(edge)
    // The edge held nothing: every byte of the bundle's objects came from the gateway, verified.
    expect(sample(edgeText, 'shoal_transfer_received_bytes_total', 'source="peer"')).toBe(bundle?.bytes)
    expect(sample(edgeText, 'shoal_swarm_chunks_verified_total')).toBe(status.stats.chunksDownloaded)
    expect(sample(edgeText, 'shoal_swarm_chunks_rejected_total')).toBe(0)
    expect(sample(edgeText, 'shoal_swarm_bans_total')).toBe(0)
    expect(sample(edgeText, 'shoal_swarm_peers_connected')).toBe(1)
    expect(sample(edgeText, 'shoal_swarm_pull_duration_seconds_count')).toBe(1)

    const gatewayText = await scrape(gateway)
    const uploaded = (await gateway.status()).stats.bytesUploaded
    expect(uploaded).toBeGreaterThanOrEqual(bundle?.bytes ?? Infinity)
    expect(sample(gatewayText, 'shoal_transfer_sent_bytes_total', 'destination="peer"')).toBe(uploaded)
  })

  it('counts and times HTTP requests by route and status, and the bytes served to local clients', async () => {
    const before = await scrape(gateway)
    for (let i = 0; i < 3; i++) expect((await fetch(`http://${gateway.registry}/v2/`)).status).toBe(200)
    for (let i = 0; i < 2; i++) expect((await fetch(`http://${gateway.registry}/v2/team/none/manifests/1.0`)).status).toBe(404)
    const health = await fetch(`http://${gateway.registry}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.text()).toBe('ok')
    const manifest = await fetch(`http://${gateway.registry}/v2/registry.example.com/shoal/app1/manifests/1.0`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(manifest.status).toBe(200)
    const layers = (await manifest.json() as { layers: Array<{ digest: string, size: number }> }).layers
    const base = layers.reduce((a, b) => a.size > b.size ? a : b)
    const blob = await fetch(`http://${gateway.registry}/v2/registry.example.com/shoal/app1/blobs/${base.digest}`)
    expect((await blob.arrayBuffer()).byteLength).toBe(base.size)
    const after = await scrape(gateway)

    const delta = (labels: string, name = 'shoal_http_requests_total'): number => sample(after, name, labels) - sample(before, name, labels)
    expect(delta('route="base",method="GET",status="200"')).toBe(3)
    expect(delta('route="manifest",method="GET",status="404"')).toBe(2)
    expect(delta('route="health",method="GET",status="200"')).toBe(1)
    expect(delta('route="blob",method="GET",status="200"')).toBe(1)
    expect(delta('route="base",method="GET"', 'shoal_http_request_duration_seconds_count')).toBe(3)
    // The scrape before this one counted itself once it finished.
    expect(delta('route="metrics",method="GET",status="200"')).toBe(1)
    const served = delta('destination="local"', 'shoal_transfer_sent_bytes_total')
    expect(served).toBeGreaterThan(base.size)
    expect(served).toBeLessThan(base.size + 8 * 1024)
  })
})
