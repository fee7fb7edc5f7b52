import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'

const REF = 'registry.example.com/shoal/app1:1.0'

interface Revision { ref: string, bundleId: string, publisher?: string, sequence?: number }

/** Tags travel as signed records: an edge follows its gateway's, and nobody else's. */
describe('refs across the fleet', () => {
  let work: string
  let images: Record<string, string>
  const daemons: DaemonProcess[] = []

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-refs-'))
    images = (await generateImages(join(work, 'images'), { baseBytes: 2 * 1024 * 1024, seed: 3 })).layouts as Record<string, string>
  })

  afterAll(async () => {
    await Promise.all(daemons.map(async d => await d.kill()))
    await rm(work, { recursive: true, force: true })
  })

  async function start (name: string, args: string[]): Promise<DaemonProcess> {
    const daemon = await startDaemonProcess(join(work, name), ['--no-mdns', ...args])
    daemons.push(daemon)
    return daemon
  }

  async function revisions (daemon: DaemonProcess): Promise<Revision[]> {
    return await daemon.request<Revision[]>('GET', `/api/v1/revisions?ref=${encodeURIComponent(REF)}`)
  }

  it('moves a tag on the edges when the gateway pushes, and ignores an untrusted publisher', async () => {
    const gateway = await start('gateway', ['--gateway'])
    const edge = await start('edge', ['--bootstrap', gateway.address, '--trust', gateway.peerId])
    // A stranger the edge is connected to, but does not trust.
    const stranger = await start('stranger', ['--bootstrap', edge.address])

    const first = await shoalOk(undefined, ['--api', gateway.api, 'push', images.app1 ?? ''])
    await waitFor('the first ref record on the edge', async () => (await revisions(edge)).some(r => r.bundleId === first) ? true : undefined, 30_000)
    const pulled = await shoal(undefined, ['--api', edge.api, 'pull', REF], { timeoutMs: 60_000 })
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(pulled.stdout.trim()).toBe(first)

    // The stranger tags another image with the same name: the edge must not follow it.
    const forged = await shoalOk(undefined, ['--api', stranger.api, 'push', images.app2 ?? '', '--ref', REF])
    expect(forged).not.toBe(first)
    await waitFor('the stranger holding its own record', async () => (await revisions(stranger)).some(r => r.bundleId === forged) ? true : undefined, 30_000)

    // The gateway moves the tag to a new image; the edge follows that one.
    const second = await shoalOk(undefined, ['--api', gateway.api, 'push', images.app3 ?? '', '--ref', `1.0=${REF}`])
    await waitFor('the gateway\'s second record on the edge', async () => (await revisions(edge)).some(r => r.bundleId === second) ? true : undefined, 30_000)
    const history = await revisions(edge)
    expect(history.map(r => r.bundleId)).toEqual([first, second])
    expect(history.every(r => r.publisher === gateway.peerId)).toBe(true)
    expect(history.some(r => r.bundleId === forged)).toBe(false)
  })
})
