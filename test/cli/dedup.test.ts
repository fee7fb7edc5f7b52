import { randomBytes } from 'node:crypto'
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { APP_NAMES, generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import { objectBytes, openStore, shardHash } from '../../src/store/index.js'
import { b3sumOfFile, sha256OfFile } from '../helpers/independent-hashes.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { bytesUnder, listFiles } from '../helpers/store-snapshot.js'
import { treeManifest } from '../helpers/tree-manifest.js'
import { useWorkDir } from '../helpers/work-dir.js'

const MIB = 1024 * 1024
// Not a multiple of the chunk size, so the base layer's last chunk is short.
const BASE_BYTES = 6 * MIB + 4321

describe('shoal push of app1, app2, app3 (one shared base layer)', () => {
  const work = useWorkDir('shoal-cli-dedup-')
  let images: GeneratedImages

  beforeAll(async () => {
    images = await generateImages(join(work(), 'images'), { baseBytes: BASE_BYTES, seed: 11 })
  })

  async function pushAll (data: string): Promise<Record<string, string>> {
    const ids: Record<string, string> = {}
    for (const app of APP_NAMES) ids[app] = await shoalOk(data, ['push', images.layouts[app]!])
    return ids
  }

  it('stores the base layer once: object bytes equal the distinct file contents of the three layouts', async () => {
    const data = join(work(), 'data-dedup')
    const ids = await pushAll(data)
    expect(new Set(Object.values(ids)).size).toBe(3)

    // Independently of shoal: distinct contents by sha256 (node's crypto), summed once each.
    const distinct = new Map<string, number>()
    let allBytes = 0
    for (const app of APP_NAMES) {
      const layout = images.layouts[app]!
      for (const rel of await listFiles(layout)) {
        const size = (await stat(join(layout, rel))).size
        distinct.set(await sha256OfFile(join(layout, rel)), size)
        allBytes += size
      }
    }
    const distinctBytes = [...distinct.values()].reduce((a, b) => a + b, 0)
    // The premise: without sharing, the base would be counted three times.
    expect(allBytes - distinctBytes).toBeGreaterThanOrEqual(2 * BASE_BYTES)

    const objectFiles = await listFiles(join(data, 'objects'))
    expect(objectFiles).toHaveLength(distinct.size)
    expect(await bytesUnder(join(data, 'objects'))).toBe(distinctBytes)
    const store = await openStore({ dir: data })
    try {
      expect(await objectBytes(store)).toBe(distinctBytes)
    } finally {
      await store.close()
    }

    // The base blob is one object file, named by its BLAKE3 (b3sum) in snapdir's sharding.
    const baseBlob = join(images.layouts.app1!, 'blobs', 'sha256', images.baseLayer.digest.slice('sha256:'.length))
    const baseObject = join(...shardHash(await b3sumOfFile(baseBlob)))
    expect(objectFiles.filter(f => f === baseObject)).toHaveLength(1)
    expect((await stat(join(data, 'objects', baseObject))).size).toBe(images.baseLayer.size)
  })

  it('keeps the base when one of the three is removed: the other two still export and verify', async () => {
    const data = join(work(), 'data-rm')
    const ids = await pushAll(data)
    const baseBlob = join(images.layouts.app1!, 'blobs', 'sha256', images.baseLayer.digest.slice('sha256:'.length))
    const baseObject = join(data, 'objects', ...shardHash(await b3sumOfFile(baseBlob)))

    const rm = await shoal(data, ['--json', 'rm', 'registry.example.com/shoal/app2:1.0'])
    expect(rm.code).toBe(0)
    const removed = JSON.parse(rm.stdout) as { removed: string[], removedObjects: number }
    expect(removed.removed).toEqual([ids.app2])
    // app2's own layers, config and manifest went; the base and the shared oci-layout did not.
    expect(removed.removedObjects).toBeGreaterThan(0)
    await expect(stat(baseObject)).resolves.toBeDefined()

    const ls = JSON.parse(await shoalOk(data, ['--json', 'ls'])) as Array<{ id: string, complete: boolean }>
    expect(ls.map(b => b.id).sort()).toEqual([ids.app1, ids.app3].sort())
    expect(ls.every(b => b.complete)).toBe(true)
    for (const app of ['app1', 'app3'] as const) {
      expect((await shoal(data, ['verify', ids[app]!])).code).toBe(0)
      const out = join(work(), `export-after-rm-${app}`)
      await shoalOk(data, ['export', ids[app]!, out])
      expect(await treeManifest(out)).toBe(await treeManifest(images.layouts[app]!))
    }
    expect((await shoal(data, ['verify'])).code).toBe(0)
    // The removed bundle is gone for good: naming it is "not found" (exit 3).
    const gone = await shoal(data, ['verify', ids.app2!])
    expect(gone.code).toBe(3)
    expect(gone.stderr).toContain('BUNDLE_NOT_FOUND')
  })

  it('leaves no object file and no partial behind when gc runs after all three (and a half-fetched bundle) are removed', async () => {
    const data = join(work(), 'data-gc')
    const ids = await pushAll(data)
    const pushedObjects = await listFiles(join(data, 'objects'))

    // A bundle that arrived from elsewhere and is half fetched: one partial object, one chunk held.
    const source = join(work(), 'data-gc-source')
    const tree = join(work(), 'gc-tree')
    await mkdir(tree)
    await writeFile(join(tree, 'big.bin'), randomBytes(2 * MIB + 17))
    const otherId = await shoalOk(source, ['push', tree])
    const store = await openStore({ dir: data })
    try {
      const from = await openStore({ dir: source })
      let encoded: Uint8Array | undefined
      let chunk: Buffer
      let object: string
      try {
        encoded = await from.getEncodedBundle(otherId)
        object = [...(await from.requireBundle(otherId)).manifest.chunkTables.keys()][0]!
        chunk = await from.readChunk(object, 1)
      } finally {
        await from.close()
      }
      await store.addBundle(encoded!, { expectedId: otherId })
      expect(await store.writeChunk(otherId, object, 1, chunk)).toEqual({ stored: true, objectComplete: false })
      expect(await listFiles(join(data, 'partial'))).toEqual([object])
      // Drop the four bundle records only; gc is what must clean up.
      for (const id of [...Object.values(ids), otherId]) await store.removeBundleRecord(id)
    } finally {
      await store.close()
    }

    const gc = JSON.parse(await shoalOk(data, ['--json', 'gc'])) as { removedObjects: number, freedBytes: number, removedPartials: number }
    expect(gc.removedObjects).toBe(pushedObjects.length)
    expect(gc.removedPartials).toBe(1)
    expect(await listFiles(join(data, 'objects'))).toEqual([])
    expect(await readdir(join(data, 'objects'))).toEqual([])
    expect(await listFiles(join(data, 'partial'))).toEqual([])
    expect(JSON.parse(await shoalOk(data, ['--json', 'ls']))).toEqual([])
    const after = await openStore({ dir: data })
    try {
      expect(await after.meta.partialObjects()).toEqual([])
      expect(await after.meta.sha256Entries()).toEqual([])
      expect(await objectBytes(after)).toBe(0)
    } finally {
      await after.close()
    }
  })
})
