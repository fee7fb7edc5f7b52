import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { canMountOwnNamespace, ownMount, startDaemonProcess, waitFor } from '../helpers/daemon-process.js'
import { shoal } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

async function get (address: string, path: string): Promise<{ status: number, body: string }> {
  const response = await fetch(`http://${address}${path}`)
  return { status: response.status, body: await response.text() }
}

describe('/healthz and /readyz', () => {
  const tempDir = useTempDirs()

  it('an edge alone is alive but not ready, saying why; once it has a peer it is ready; a gateway is ready alone', async () => {
    const dir = await tempDir()
    const gateway = await startDaemonProcess(join(dir, 'gateway'), ['--no-mdns', '--gateway'])
    const edge = await startDaemonProcess(join(dir, 'edge'), ['--no-mdns'])
    try {
      expect(await get(edge.registry, '/healthz')).toEqual({ status: 200, body: 'ok' })
      const alone = await get(edge.registry, '/readyz')
      expect(alone.status).toBe(503)
      expect(alone.body).toContain('ok store: writable')
      expect(alone.body).toContain('FAIL swarm: no peer connected')
      const gatewayReady = await get(gateway.registry, '/readyz')
      expect(gatewayReady.status).toBe(200)
      expect(gatewayReady.body).toContain('ok swarm: gateway')
      await edge.stop()
      const joined = await startDaemonProcess(join(dir, 'edge'), ['--no-mdns', '--bootstrap', gateway.address, '--trust', gateway.peerId])
      try {
        const ready = await waitFor('the edge to be ready', async () => {
          const answer = await get(joined.registry, '/readyz')
          return answer.status === 200 ? answer : undefined
        }, 30_000)
        expect(ready.body).toContain('ok swarm: 1 peer(s)')
        // Once at start, whose tags it follows: here the gateway named by --trust.
        expect(joined.logs()).toContain('ref records are accepted from these publishers')
        expect(joined.logs()).toContain(gateway.peerId)
      } finally {
        await joined.stop()
      }
    } finally {
      await edge.stop()
      await gateway.stop()
    }
  })

  it('an edge whose only peer has gone is no longer ready, though it once moved bytes with it', async () => {
    const dir = await tempDir()
    const gateway = await startDaemonProcess(join(dir, 'gateway'), ['--no-mdns', '--gateway'])
    const edge = await startDaemonProcess(join(dir, 'edge'), ['--no-mdns', '--bootstrap', gateway.address, '--trust', gateway.peerId])
    try {
      const tree = join(dir, 'tree')
      await mkdir(tree)
      await writeFile(join(tree, 'file'), randomBytes(64 * 1024))
      const pushed = await shoal(gateway.dataDir, ['push', tree])
      expect(pushed.code).toBe(0)
      // Bytes moved: the swarm keeps the gateway in its peer list (with its totals) after it leaves.
      expect((await shoal(edge.dataDir, ['pull', pushed.stdout.trim()])).code).toBe(0)
      expect((await get(edge.registry, '/readyz')).status).toBe(200)
      await gateway.stop()
      const alone = await waitFor('the edge to be not ready', async () => {
        const answer = await get(edge.registry, '/readyz')
        return answer.status === 503 ? answer : undefined
      }, 30_000)
      expect(alone.body).toContain('FAIL swarm: no peer connected')
      // The CLI says the same: the gateway is listed for its totals, marked as gone.
      expect((await shoal(edge.dataDir, ['status'])).stdout).toContain('0 peer(s) connected, 1 known')
      expect((await shoal(edge.dataDir, ['peers'])).stdout).toMatch(new RegExp(`^${gateway.peerId} .*  disconnected`, 'm'))
      // Alive all the same: losing the gateway is no reason to restart the edge.
      expect((await get(edge.registry, '/healthz')).status).toBe(200)
    } finally {
      await edge.stop()
      await gateway.stop()
    }
  })

  it('refuses a bootstrap address without /p2p/ID at start, showing the right form', async () => {
    const dir = await tempDir()
    const result = await shoal(dir, ['daemon', '--registry', '127.0.0.1:0', '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', '/ip4/10.0.0.1/tcp/4001'])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain('/ip4/10.0.0.1/tcp/4001/p2p/12D3KooW')
    expect(result.stderr).toContain('CONFIG_INVALID')
  })

  it.skipIf(!canMountOwnNamespace())('is not ready when the store\'s disk is full, and says so', async () => {
    const dir = await tempDir()
    const data = join(dir, 'full')
    await mkdir(data)
    // The daemon's own mount namespace gets a tiny tmpfs as its data dir, filled up after start.
    const gateway = await startDaemonProcess(data, ['--no-mdns', '--gateway'], {}, {
      wrap: ownMount(data, 'tmpfs', 'size=2m'),
    })
    try {
      expect((await get(gateway.registry, '/readyz')).status).toBe(200)
      execFileSync('nsenter', ['-t', String(gateway.child.pid), '-m', 'sh', '-c', `dd if=/dev/zero of=${join(data, 'filler')} bs=64k 2>/dev/null; true`])
      const full = await get(gateway.registry, '/readyz')
      expect(full.status).toBe(503)
      expect(full.body).toMatch(/FAIL store: not writable: .*ENOSPC/)
      // Alive all the same: a liveness probe must not restart a node for a full disk.
      expect((await get(gateway.registry, '/healthz')).status).toBe(200)
    } finally {
      await gateway.stop()
    }
  })
})
