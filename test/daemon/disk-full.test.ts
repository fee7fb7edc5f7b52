import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { canMountOwnNamespace, ownMount, startDaemonProcess } from '../helpers/daemon-process.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024

describe.skipIf(!canMountOwnNamespace())('a disk that fills during a pull', () => {
  const tempDir = useTempDirs()

  it('stops the pull with a clear error, leaves the store verifying clean, and the pull resumes once there is room', async () => {
    const dir = await tempDir()
    const tree = join(dir, 'tree')
    await mkdir(tree)
    await writeFile(join(tree, 'big.bin'), randomBytes(24 * MIB))
    const gateway = await startDaemonProcess(join(dir, 'gateway'), ['--no-mdns', '--gateway'])
    const data = join(dir, 'edge')
    await mkdir(data)
    // The edge's data dir is a 12 MiB tmpfs in its own mount namespace: half the bundle fits.
    // Its control socket lives outside it, where the CLI can see it.
    const edge = await startDaemonProcess(data, ['--no-mdns', '--bootstrap', gateway.address, '--api', join(dir, 'edge.sock')], {}, {
      wrap: ownMount(data, 'tmpfs', 'size=12m'),
    })
    try {
      const id = await shoalOk(undefined, ['--api', gateway.api, 'push', tree])
      const full = await shoal(undefined, ['--api', edge.api, 'pull', id], { timeoutMs: 120_000 })
      expect(full.code).not.toBe(0)
      expect(full.stderr).toMatch(/ENOSPC|DISK_FULL|no space/i)
      // Clean: every object and every held chunk re-hashes right; what is absent is only the
      // unfinished bundle's rest (verify counts that as missing, not bad).
      const verify = JSON.parse((await shoal(undefined, ['--api', edge.api, '--json', 'verify'])).stdout) as { bad: unknown[], missing: Array<{ bundleId: string }> }
      expect(verify.bad).toEqual([])
      expect(verify.missing.length).toBeGreaterThan(0)
      expect(new Set(verify.missing.map(m => m.bundleId))).toEqual(new Set([id]))
      // Room again (the same tmpfs, grown): the same pull completes from where it stopped.
      execFileSync('nsenter', ['-t', String(edge.child.pid), '-m', 'mount', '-o', 'remount,size=64m', data])
      const resumed = await shoal(undefined, ['--api', edge.api, 'pull', id], { timeoutMs: 120_000 })
      expect(resumed.code, resumed.stderr).toBe(0)
      expect(await shoalOk(undefined, ['--api', edge.api, 'verify', id])).toContain('ok')
    } finally {
      await edge.stop()
      await gateway.stop()
    }
  })
})
