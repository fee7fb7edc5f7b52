import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { FleetResponse } from '../../src/http/index.js'
import { pushTree } from '../../src/store/index.js'
import { startInProcess, type TestDaemon } from '../helpers/daemon-in-process.js'
import { shoal } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

/**
 * `shoal fleet`'s row for the node it asks: its bundles as its store holds them now. The row came
 * from the node's last signed status, so after `shoal rm` it showed the removed bundle for up to
 * a heartbeat (30 s) — the new-operator walk's loose end.
 */
describe('shoal fleet, the asked node\'s own row', () => {
  const tempDir = useTempDirs()
  const started: TestDaemon[] = []
  afterEach(async () => {
    for (const { daemon } of started.splice(0)) await daemon.stop()
  })

  it('counts a bundle pushed or removed at once, not at the next heartbeat', async () => {
    const dir = await tempDir()
    const node = await startInProcess(join(dir, 'node'))
    started.push(node)
    const api = join(dir, 'node', 'api.sock')
    const own = async (): Promise<FleetResponse['nodes'][number] | undefined> => {
      const result = await shoal(undefined, ['--api', api, '--json', 'fleet'])
      expect(result.code, result.stderr).toBe(0)
      return (JSON.parse(result.stdout) as FleetResponse).nodes.find(n => n.self)
    }
    expect(await own()).toMatchObject({ completeCount: 0, complete: [] })

    const tree = await tempDir()
    await writeFile(join(tree, 'file.txt'), 'one bundle\n')
    const { bundleId } = await pushTree(node.daemon.store, tree)
    expect(await own()).toMatchObject({ completeCount: 1, complete: [bundleId] })

    const removed = await shoal(undefined, ['--api', api, 'rm', bundleId])
    expect(removed.code, removed.stderr).toBe(0)
    expect(await own()).toMatchObject({ completeCount: 0, complete: [] })
  })
})
