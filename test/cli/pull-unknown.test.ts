import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoal } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

describe('shoal pull of a bundle no one has', () => {
  const tempDir = useTempDirs()
  const daemons: DaemonProcess[] = []
  afterAll(async () => { await Promise.all(daemons.map(async d => await d.kill())) })

  it('exits 3 after one manifest search, saying what it asked, instead of waiting out the search', async () => {
    const work = await tempDir()
    const gateway = await startDaemonProcess(join(work, 'gateway'), ['--no-mdns', '--gateway'])
    daemons.push(gateway)
    const edge = await startDaemonProcess(join(work, 'edge'), ['--no-mdns', '--bootstrap', gateway.address])
    daemons.push(edge)
    await waitFor('the edge connected to the gateway', async () => (await edge.status()).peers.length > 0 ? true : undefined, 30_000)

    const unknown = randomBytes(32).toString('hex')
    // The daemon's own manifest search lasts 30 s; a CLI pull that waited it out would be
    // killed at 20 s and fail here.
    const result = await shoal(undefined, ['--api', edge.api, 'pull', unknown], { timeoutMs: 20_000 })
    expect(result.code, result.stderr).toBe(3)
    expect(result.stderr).toContain(`looking for bundle ${unknown}: asked 1 peer(s), 1 DHT lookup(s), 0 holder(s) found`)
    expect(result.stderr).toContain('SWARM_BUNDLE_NOT_FOUND')
    expect(result.stdout).toBe('')
  })
})
