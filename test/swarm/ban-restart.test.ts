import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { BanFile } from '../../src/swarm/ban-file.js'
import { BanList } from '../../src/swarm/ban-list.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { useTempDirs } from '../helpers/temp-dir.js'
import { HostilePeer } from './hostile-peer.js'

/**
 * Issue 13: a ban outlives the daemon that made it. A real daemon bans a real libp2p peer
 * that floods invalid ref records, is stopped and started again on the same data directory,
 * and still refuses that peer, from DATA/bans.json.
 */

const tempDir = useTempDirs()
const quiet = { warn: () => {} }

describe('bans survive a restart', () => {
  const daemons: DaemonProcess[] = []
  const peers: HostilePeer[] = []
  afterEach(async () => {
    for (const daemon of daemons.splice(0)) await daemon.stop()
    for (const peer of peers.splice(0)) await peer.stop()
  })

  it('a daemon restarted on the same data directory still refuses the peer it banned', async () => {
    const dataDir = await tempDir()
    const args = ['--no-mdns']
    const first = await startDaemonProcess(dataDir, args)
    daemons.push(first)
    const peer = await HostilePeer.start()
    peers.push(peer)
    const connection = await peer.connect(first.address)
    // Each garbage batch ends at its first record and costs one protocol violation; two ban.
    await peer.floodInvalidRefs(connection, 5, 50)
    await waitFor('the ban', async () => (await first.status()).peers.find(p => p.id === peer.peerId && p.banned), 30_000)
    expect((await first.status()).stats.bans).toBe(1)
    expect(await first.stop()).toBe(0)

    const saved = JSON.parse(await readFile(join(dataDir, 'bans.json'), 'utf8')) as { peers: Array<{ peer: string, reason: string, until: number }> }
    expect(saved.peers.map(b => b.peer)).toEqual([peer.peerId])
    expect(saved.peers[0]?.until).toBeGreaterThan(Date.now())

    const second = await startDaemonProcess(dataDir, args)
    daemons.push(second)
    expect(second.logs()).toContain('bans restored from the last run')
    // The gater refuses it after the handshake: the dial fails, or the connection is cut at once.
    const refused = await peer.connect(second.address).then(
      async (c) => await new Promise<boolean>((resolve) => {
        if (c.status !== 'open') { resolve(true); return }
        const timer = setTimeout(() => { resolve(false) }, 10_000)
        c.addEventListener('close', () => { clearTimeout(timer); resolve(true) }, { once: true })
      }),
      () => true,
    )
    expect(refused).toBe(true)
    expect((await second.status()).peers.find(p => p.id === peer.peerId)?.banned).toBe(true)
  }, 120_000)

  it('drops bans that ended, and sets an unreadable file aside instead of failing to start', async () => {
    const dir = await tempDir()
    const path = join(dir, 'bans.json')
    let now = 1_000_000
    const bans = new BanList(() => now)
    const file = new BanFile(path, bans, quiet)
    await file.load()
    bans.ban('peer-short', 1_000, 'test: short')
    bans.ban('peer-long', 60_000, 'test: long')
    bans.banPrefix('10.1.2.0/24', 60_000, 'test: prefix')
    await file.flush()

    now += 5_000
    const restored = new BanList(() => now)
    expect(await new BanFile(path, restored, quiet).load()).toBe(1)
    expect(restored.list().map(b => b.peer)).toEqual(['peer-long'])
    expect(restored.isAddressBanned('/ip4/10.1.2.9/tcp/4001')).toBe(true)

    await writeFile(path, '{"format": 1, "peers": [{"peer": 5}]')
    const warnings: string[] = []
    const fresh = new BanList(() => now)
    expect(await new BanFile(path, fresh, { warn: (msg) => { warnings.push(msg) } }).load()).toBe(0)
    expect(warnings).toEqual([expect.stringContaining('does not parse')])
    expect(await readFile(`${path}.unreadable`, 'utf8')).toContain('"peer": 5')
  })
})
