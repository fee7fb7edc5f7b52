import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'

/** How daemons find each other, and who may not: separate processes, real TCP on loopback. */
describe('discovery and closed fleets', () => {
  let work: string
  let image: string
  const daemons: DaemonProcess[] = []

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-discovery-'))
    image = (await generateImages(join(work, 'images'), { baseBytes: 3 * 1024 * 1024, seed: 11 })).layouts.app1 ?? ''
  })

  afterAll(async () => {
    await Promise.all(daemons.map(async d => await d.kill()))
    await rm(work, { recursive: true, force: true })
  })

  async function start (name: string, args: string[]): Promise<DaemonProcess> {
    const daemon = await startDaemonProcess(join(work, name), args)
    daemons.push(daemon)
    return daemon
  }

  it('finds a neighbour with mDNS alone and pulls from it', async () => {
    const seed = await start('mdns-seed', [])
    const id = await shoalOk(undefined, ['--api', seed.api, 'push', image])
    const edge = await start('mdns-edge', [])
    await waitFor('the edge to see the seed', async () => (await edge.status()).peers.some(p => p.id === seed.peerId) ? true : undefined, 30_000)
    const result = await shoal(undefined, ['--api', edge.api, 'pull', id], { timeoutMs: 60_000 })
    expect(result.code, result.stderr).toBe(0)
    expect((await edge.status()).stats.perPeer[seed.peerId]?.bytesDownloaded ?? 0).toBeGreaterThan(0)
  })

  it('finds a holder two hops away through the DHT', async () => {
    const holder = await start('dht-holder', ['--no-mdns'])
    const middle = await start('dht-middle', ['--no-mdns', '--bootstrap', holder.address])
    const seeker = await start('dht-seeker', ['--no-mdns', '--bootstrap', middle.address])
    await waitFor('the middle node to know both', async () => (await middle.status()).peers.length >= 2 ? true : undefined, 30_000)
    // Pushed once the fleet has formed, so the provider record lands on the middle node.
    const id = await shoalOk(undefined, ['--api', holder.api, 'push', image])
    // The seeker was told only of the middle node (no mDNS), which never holds the bundle: the
    // holder can only have been found through the DHT (its routing table or provider records).
    const result = await shoal(undefined, ['--api', seeker.api, 'pull', id], { timeoutMs: 90_000 })
    expect(result.code, result.stderr).toBe(0)
    expect((await seeker.status()).stats.perPeer[holder.peerId]?.bytesDownloaded ?? 0).toBeGreaterThan(0)
    expect((await middle.status()).bundles).toEqual([])
  })

  it('keeps a node without the swarm key out of a closed fleet', async () => {
    const keyFile = join(work, 'swarm.key')
    await shoalOk(undefined, ['keygen', 'swarm', keyFile])
    const gateway = await start('closed-gateway', ['--no-mdns', '--gateway', '--swarm-key', keyFile])
    const id = await shoalOk(undefined, ['--api', gateway.api, 'push', image])
    const member = await start('closed-member', ['--no-mdns', '--swarm-key', keyFile, '--bootstrap', gateway.address])
    expect((await shoal(undefined, ['--api', member.api, 'pull', id], { timeoutMs: 60_000 })).code).toBe(0)

    const stranger = await start('closed-stranger', ['--no-mdns', '--bootstrap', gateway.address])
    const dial = await stranger.request<unknown>('GET', '/api/v1/peers')
    expect(dial).toEqual([])
    expect((await gateway.status()).peers.map(p => p.id)).not.toContain(stranger.peerId)
    // Its pull finds nobody; the daemon gives up on the manifest search and says so.
    const refused = await shoal(undefined, ['--api', stranger.api, 'pull', id], { timeoutMs: 90_000 })
    expect(refused.code).not.toBe(0)
    expect((await stranger.status()).stats.bytesDownloaded).toBe(0)
  })
})
