import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { pushTree, verifyStore } from '../../src/store/index.js'
import { startInProcess, type TestDaemon } from '../helpers/daemon-in-process.js'
import { canMountOwnNamespace, logLines, ownMount, startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.js'
import { refuseDirectWrites } from '../helpers/refuse-direct-io.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024

/** The lines of a daemon's JSON log whose message is `msg`. */
function logged (daemon: DaemonProcess, msg: string): Array<Record<string, unknown>> {
  return logLines(daemon).filter(l => l.msg === msg)
}

/** A directory `tree` under `dir` with a file of random bytes of each size. */
async function treeOf (dir: string, sizes: Record<string, number>): Promise<string> {
  const tree = join(dir, 'tree')
  await mkdir(tree)
  for (const [name, size] of Object.entries(sizes)) await writeFile(join(tree, name), randomBytes(size))
  return tree
}

describe.skipIf(!canMountOwnNamespace())('a daemon whose data directory refuses O_DIRECT', () => {
  const tempDir = useTempDirs()

  it('says so once at start and pulls through the page cache; on a disk that takes it, direct I/O is on by default', async () => {
    const dir = await tempDir()
    const tree = await treeOf(dir, { 'layer.bin': 3 * MIB + 1000 })
    const gateway = await startDaemonProcess(join(dir, 'gateway'), ['--no-mdns', '--gateway'])
    const data = join(dir, 'edge')
    await mkdir(data)
    // ramfs refuses O_DIRECT at open (tmpfs takes it since Linux 6.6), in the edge's own mount namespace.
    const edge = await startDaemonProcess(data, ['--no-mdns', '--bootstrap', gateway.address, '--api', join(dir, 'edge.sock')], {}, {
      wrap: ownMount(data, 'ramfs'),
    })
    try {
      const id = await shoalOk(undefined, ['--api', gateway.api, 'push', tree])
      const pulled = await shoal(undefined, ['--api', edge.api, 'pull', id], { timeoutMs: 120_000 })
      expect(pulled.code, pulled.stderr).toBe(0)
      expect(await shoalOk(undefined, ['--api', edge.api, 'verify', id])).toContain('ok')
    } finally {
      await edge.stop()
      await gateway.stop()
    }
    const refused = logged(edge, 'the data directory\'s filesystem refuses O_DIRECT: pulled chunks are written through the page cache')
    expect(refused).toHaveLength(1)
    expect(refused[0]).toMatchObject({ level: 'info', reason: expect.stringMatching(/EINVAL/) as unknown })
    expect(logged(edge, 'daemon started')[0]).toMatchObject({ directIo: false })
    expect(logged(gateway, 'daemon started')[0]).toMatchObject({ directIo: true })
  })
})

describe('a daemon whose data directory refuses O_DIRECT in the middle of a pull', () => {
  const tempDir = useTempDirs()

  it('writes on through the page cache: the pull completes with each chunk fetched once, verify is clean, and it warns once', async () => {
    const dir = await tempDir()
    // 7 and 3 chunks, no object of one chunk (those never go through O_DIRECT).
    const tree = await treeOf(dir, { 'layer.bin': 6 * MIB + 1000, 'other.bin': 3 * MIB })
    const started: TestDaemon[] = []
    let edgeLogs: Array<Record<string, unknown>> = []
    let seam: Awaited<ReturnType<typeof refuseDirectWrites>> | undefined
    try {
      const gateway = await startInProcess(join(dir, 'gateway'), { gateway: true })
      started.push(gateway)
      const edge = await startInProcess(join(dir, 'edge'))
      started.push(edge)
      edgeLogs = edge.logs
      expect(edge.daemon.store.directIo).toEqual({ on: true })
      const { bundleId } = await pushTree(gateway.daemon.store, tree)
      const joined = new Promise<void>(resolve => { edge.daemon.swarm.on('neighbour:joined', () => { resolve() }) })
      await edge.daemon.swarm.dial(gateway.daemon.swarm.addresses()[0] ?? '')
      await joined
      const stored = new Map<string, number>()
      edge.daemon.store.on('chunk:stored', ({ object, index }) => { stored.set(`${object}/${index}`, (stored.get(`${object}/${index}`) ?? 0) + 1) })

      // Two chunks go out with O_DIRECT, then the filesystem refuses it (see the helper for why a seam).
      seam = await refuseDirectWrites(2)
      await edge.daemon.swarm.pull(bundleId, { signal: AbortSignal.timeout(60_000) })
      expect(seam.refused()).toBeGreaterThan(0)
      expect(edge.daemon.store.directIo).toMatchObject({ on: false })
      const stats = edge.daemon.swarm.stats()
      expect(stats.chunksDownloaded).toBe(10)
      expect(stats.chunksFetchedTwice).toBe(0)
      expect(stats.chunksRejected).toBe(0)
      expect(stored.size).toBe(10)
      expect([...stored.values()].every(n => n === 1)).toBe(true)
      expect(await verifyStore(edge.daemon.store, { bundleId })).toMatchObject({ ok: true, bad: [], missing: [] })
    } finally {
      seam?.restore()
      for (const { daemon } of started.reverse()) await daemon.stop()
    }
    const warned = edgeLogs.filter(l => l.level === 'warn' && String(l.msg).includes('refused O_DIRECT'))
    expect(warned).toHaveLength(1)
    expect(warned[0]).toMatchObject({ code: 'EINVAL', op: 'write', path: expect.stringContaining('/partial/') as unknown })
  })
})
