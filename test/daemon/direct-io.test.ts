import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { canMountOwnNamespace, logLines, ownMount, startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024

/** The lines of a daemon's JSON log whose message is `msg`. */
function logged (daemon: DaemonProcess, msg: string): Array<Record<string, unknown>> {
  return logLines(daemon).filter(l => l.msg === msg)
}

describe.skipIf(!canMountOwnNamespace())('a daemon whose data directory refuses O_DIRECT', () => {
  const tempDir = useTempDirs()

  it('says so once at start and pulls through the page cache; on a disk that takes it, direct I/O is on by default', async () => {
    const dir = await tempDir()
    const tree = join(dir, 'tree')
    await mkdir(tree)
    await writeFile(join(tree, 'layer.bin'), randomBytes(3 * MIB + 1000))
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
