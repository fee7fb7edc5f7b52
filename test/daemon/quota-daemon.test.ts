import { randomBytes } from 'node:crypto'
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoalOk } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024
const BUNDLE_BYTES = 2 * MIB
const QUOTA_BYTES = 5 * MIB

/**
 * Bytes of complete objects in a data dir (what the quota counts), from the files themselves.
 * A file the daemon evicts between the listing and its stat is gone: it counts nothing (clean-clone CI saw ENOENT there).
 */
async function objectBytes (dataDir: string): Promise<number> {
  const goneIsNothing = (err: NodeJS.ErrnoException): undefined => { if (err.code === 'ENOENT') return undefined; throw err }
  let total = 0
  const root = join(dataDir, 'objects')
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name)).catch(goneIsNothing))?.size ?? 0
  }
  return total
}

async function bundleIds (daemon: DaemonProcess): Promise<string[]> {
  return (await daemon.status()).bundles.map(b => b.id).sort()
}

describe('--quota on a running daemon', () => {
  const tempDir = useTempDirs()

  async function trees (dir: string, count: number): Promise<string[]> {
    const out: string[] = []
    for (let i = 0; i < count; i++) {
      const tree = join(dir, `tree-${i}`)
      await mkdir(tree, { recursive: true })
      await writeFile(join(tree, 'data.bin'), randomBytes(BUNDLE_BYTES))
      out.push(tree)
    }
    return out
  }

  it('holds for pushes: past the quota the least recently used bundle goes, the newest stays', async () => {
    const dir = await tempDir()
    const daemon = await startDaemonProcess(join(dir, 'node'), ['--no-mdns', '--gateway', '--quota', String(QUOTA_BYTES)])
    try {
      const ids: string[] = []
      for (const tree of await trees(dir, 4)) {
        ids.push(await shoalOk(undefined, ['--api', daemon.api, 'push', tree]))
        // The keeper runs after the write; wait for it rather than for time.
        await waitFor('the store to be within the quota plus one bundle', async () => await objectBytes(join(dir, 'node')) <= QUOTA_BYTES + BUNDLE_BYTES ? true : undefined, 30_000)
      }
      const kept = await waitFor('the quota to hold', async () => {
        const held = await bundleIds(daemon)
        return await objectBytes(join(dir, 'node')) <= QUOTA_BYTES ? held : undefined
      }, 30_000)
      // Two bundles fit in 5 MiB; the two oldest were evicted, in order of last use.
      expect(kept).toEqual([ids[2], ids[3]].sort())
      expect(daemon.logs()).toContain('evicted bundles to stay within the quota')
      expect(await shoalOk(undefined, ['--api', daemon.api, 'verify'])).toContain('ok')
    } finally {
      await daemon.stop()
    }
  })

  it('holds for pulls from the swarm: an edge pulling past its quota evicts what it used least, never the pull under way', async () => {
    const dir = await tempDir()
    const gateway = await startDaemonProcess(join(dir, 'gateway'), ['--no-mdns', '--gateway'])
    const edge = await startDaemonProcess(join(dir, 'edge'), ['--no-mdns', '--bootstrap', gateway.address, '--quota', String(QUOTA_BYTES)])
    try {
      const ids: string[] = []
      for (const tree of await trees(dir, 3)) ids.push(await shoalOk(undefined, ['--api', gateway.api, 'push', tree]))
      for (const id of ids) {
        expect(await shoalOk(undefined, ['--api', edge.api, 'pull', id])).toBe(id)
        expect(await objectBytes(join(dir, 'edge'))).toBeLessThanOrEqual(QUOTA_BYTES + BUNDLE_BYTES)
      }
      const kept = await waitFor('the edge to be within its quota', async () => await objectBytes(join(dir, 'edge')) <= QUOTA_BYTES ? await bundleIds(edge) : undefined, 30_000)
      expect(kept).toEqual([ids[1], ids[2]].sort())
      // The gateway, with no quota, kept everything.
      expect(await bundleIds(gateway)).toEqual([...ids].sort())
    } finally {
      await edge.stop()
      await gateway.stop()
    }
  })
})
