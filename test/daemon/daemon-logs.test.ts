import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { logLines, startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoalOk } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const REF = 'registry.example.com/team/app:1.0'

describe('what a daemon logs at info', () => {
  const tempDir = useTempDirs()
  const daemons: DaemonProcess[] = []
  afterAll(async () => { await Promise.all(daemons.map(async d => await d.kill())) })

  it('logs a CLI push with its --ref, and the tag it set and then moved, with where it pointed before', async () => {
    const work = await tempDir()
    const images = (await generateImages(join(work, 'images'), { baseBytes: 256 * 1024, seed: 5 })).layouts as Record<string, string>
    const daemon = await startDaemonProcess(join(work, 'node'), ['--no-mdns', '--log-level', 'info'])
    daemons.push(daemon)

    const first = await shoalOk(undefined, ['--api', daemon.api, 'push', images.app1 ?? '', '--ref', REF])
    const second = await shoalOk(undefined, ['--api', daemon.api, 'push', images.app2 ?? '', '--ref', REF])
    const moved = await waitFor('the ref move in the log', async () => logLines(daemon).find(l => l.msg === 'ref moved' && l.ref === REF), 10_000)
    expect(moved).toMatchObject({ level: 'info', ref: REF, bundleId: second, previous: first })
    const lines = logLines(daemon)
    expect(lines.find(l => l.msg === 'ref set' && l.ref === REF)).toMatchObject({ level: 'info', ref: REF, bundleId: first })
    expect(lines.filter(l => l.msg === 'bundle pushed')).toMatchObject([
      { level: 'info', module: 'control', bundleId: first, refs: expect.arrayContaining([REF]) as unknown },
      { level: 'info', module: 'control', bundleId: second, refs: expect.arrayContaining([REF]) as unknown },
    ])
  })
})
