import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isDirectAligned } from '../../src/store/direct-io.js'
import { pushTree, verifyStore } from '../../src/store/index.js'
import { startInProcess, type TestDaemon } from '../helpers/daemon-in-process.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024

describe('chunks received for a direct-I/O store', () => {
  const tempDir = useTempDirs()

  it('land on a page boundary of aligned memory, so the store writes each whole chunk O_DIRECT without a bounce copy', async () => {
    const dir = await tempDir()
    const tree = join(dir, 'tree')
    await mkdir(tree)
    // 5 whole chunks and a tail (which is not whole blocks: it goes through a bounce buffer).
    await writeFile(join(tree, 'layer.bin'), randomBytes(5 * MIB + 1000))
    const started: TestDaemon[] = []
    try {
      const gateway = await startInProcess(join(dir, 'gateway'), { gateway: true })
      started.push(gateway)
      const edge = await startInProcess(join(dir, 'edge'))
      started.push(edge)
      expect(edge.daemon.store.directIo).toEqual({ on: true })
      const { bundleId } = await pushTree(gateway.daemon.store, tree)
      const joined = new Promise<void>(resolve => { edge.daemon.swarm.on('neighbour:joined', () => { resolve() }) })
      await edge.daemon.swarm.dial(gateway.daemon.swarm.addresses()[0] ?? '')
      await joined
      // What the fetcher hands the store: each chunk's bytes, as they are in the receive memory.
      const handed: Array<{ bytes: number, aligned: boolean }> = []
      const store = edge.daemon.store
      const writeChunk = store.writeChunk.bind(store)
      store.writeChunk = async (bundle, object, index, data, options) => {
        handed.push({ bytes: data.byteLength, aligned: isDirectAligned(data) })
        return await writeChunk(bundle, object, index, data, options)
      }
      await edge.daemon.swarm.pull(bundleId, { signal: AbortSignal.timeout(60_000) })
      const whole = handed.filter(h => h.bytes === MIB)
      expect(whole).toHaveLength(5)
      expect(whole.every(h => h.aligned)).toBe(true)
      expect(await verifyStore(store, { bundleId })).toMatchObject({ ok: true, bad: [], missing: [] })
    } finally {
      for (const { daemon } of started.reverse()) await daemon.stop()
    }
  })
})
