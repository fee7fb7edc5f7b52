import { randomBytes } from 'node:crypto'
import { mkdir, open as openFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { snapdirId } from '../../src/manifest/index.js'
import { exportTree, FileStore, openStore, pushTree, shardHash, syncSnapshot, verifyStore, type Store, type SyncEndpoint } from '../../src/store/index.js'
import { b3sumManifest, b3sumOfBytes, b3sumOfFile } from '../helpers/independent-hashes.js'
import { listFiles } from '../helpers/store-snapshot.js'
import { useTempDirs } from '../helpers/temp-dir.js'
import { treeManifest } from '../helpers/tree-manifest.js'

const KIB = 1024

describe('syncSnapshot between a shoal store and a file:// store', () => {
  const tempDir = useTempDirs()
  const opened: Store[] = []
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close()
  })

  async function newStore (): Promise<Store> {
    const store = await openStore({ dir: await tempDir() })
    opened.push(store)
    return store
  }

  const shoalEnd = (store: Store): SyncEndpoint => ({ kind: 'shoal', store })
  const fileEnd = (root: string): SyncEndpoint => ({ kind: 'file', store: new FileStore(root) })

  /** Three files, one over a chunk (so the bundle has a chunk table), one shared with tree two. */
  async function trees (): Promise<{ one: string, two: string }> {
    const shared = randomBytes(100 * KIB)
    const one = await tempDir()
    await mkdir(join(one, 'sub'))
    await writeFile(join(one, 'big.bin'), randomBytes(2200 * KIB))
    await writeFile(join(one, 'sub', 'shared.bin'), shared)
    await writeFile(join(one, 'sub', 'only-one.txt'), 'one\n')
    const two = await tempDir()
    await writeFile(join(two, 'shared.bin'), shared)
    await writeFile(join(two, 'only-two.txt'), 'two\n')
    await writeFile(join(two, 'also-two.bin'), randomBytes(10 * KIB))
    return { one, two }
  }

  it('writes snapdir\'s layout into a file store it creates, under the snapdir ID (b3sum of the manifest)', async () => {
    const { one } = await trees()
    const source = await newStore()
    const pushed = await pushTree(source, one)
    const root = join(await tempDir(), 'not-yet-there')
    const result = await syncSnapshot(pushed.bundleId, shoalEnd(source), fileEnd(root))

    const expectedManifest = await b3sumManifest(one)
    expect(result.id).toBe(await b3sumOfBytes(expectedManifest))
    expect(result.id).toBe(snapdirId(pushed.bundle.manifestText))
    expect(await readFile(join(root, '.manifests', ...shardHash(result.id)), 'utf8')).toBe(expectedManifest)
    const objectFiles = await listFiles(join(root, '.objects'))
    expect(objectFiles).toHaveLength(3)
    for (const rel of objectFiles) expect(await b3sumOfFile(join(root, '.objects', rel))).toBe(rel.split('/').join(''))
    expect(result).toMatchObject({ copiedObjects: 3, skippedObjects: 0 })
    // No staging left behind in the file store.
    expect((await listFiles(root)).every(p => p.startsWith('.objects/') || p.startsWith('.manifests/'))).toBe(true)
  })

  it('syncs there and back to the same bundle ID, and a second sync copies nothing', async () => {
    const { one } = await trees()
    const source = await newStore()
    const { bundleId } = await pushTree(source, one)
    const root = await tempDir()

    const out = await syncSnapshot(bundleId, shoalEnd(source), fileEnd(root))
    expect(out).toMatchObject({ copiedObjects: 3, skippedObjects: 0 })
    expect(await syncSnapshot(bundleId, shoalEnd(source), fileEnd(root))).toMatchObject({ id: out.id, copiedObjects: 0, copiedBytes: 0, skippedObjects: 3 })

    const target = await newStore()
    const back = await syncSnapshot(out.id, fileEnd(root), shoalEnd(target))
    expect(back).toMatchObject({ id: bundleId, copiedObjects: 3, skippedObjects: 0 })
    expect(await target.bundleIds()).toEqual([bundleId])
    expect(await verifyStore(target)).toMatchObject({ ok: true, bundles: 1, objectsChecked: 3 })
    const checkout = join(await tempDir(), 'checkout')
    await exportTree(target, bundleId, checkout)
    expect(await treeManifest(checkout)).toBe(await treeManifest(one))

    expect(await syncSnapshot(out.id, fileEnd(root), shoalEnd(target))).toMatchObject({ id: bundleId, copiedObjects: 0, copiedBytes: 0, skippedObjects: 3 })
    expect(await target.bundleIds()).toEqual([bundleId])
    // The snapdir ID also resolves to the bundle in the shoal store.
    expect(await target.resolve(out.id)).toBe(bundleId)
  })

  it('copies only the objects the destination lacks', async () => {
    const { one, two } = await trees()
    const source = await newStore()
    const first = await pushTree(source, one)
    const second = await pushTree(source, two)
    const root = await tempDir()
    await syncSnapshot(first.bundleId, shoalEnd(source), fileEnd(root))
    const out = await syncSnapshot(second.bundleId, shoalEnd(source), fileEnd(root))
    // shared.bin was there already.
    expect(out).toMatchObject({ copiedObjects: 2, copiedBytes: 10 * KIB + 4, skippedObjects: 1 })

    const target = await newStore()
    await syncSnapshot(out.id, fileEnd(root), shoalEnd(target))
    const again = await syncSnapshot(snapdirId(first.bundle.manifestText), fileEnd(root), shoalEnd(target))
    expect(again).toMatchObject({ id: first.bundleId, copiedObjects: 2, skippedObjects: 1 })
    expect(await verifyStore(target)).toMatchObject({ ok: true, bundles: 2 })
  })

  it('refuses a damaged object in the source and leaves the destination without the bundle', async () => {
    const { one } = await trees()
    const source = await newStore()
    const { bundleId, bundle } = await pushTree(source, one)
    const root = await tempDir()
    const { id } = await syncSnapshot(bundleId, shoalEnd(source), fileEnd(root))
    const big = [...bundle.chunkTables.keys()][0]!
    const file = await openFile(join(root, '.objects', ...shardHash(big)), 'r+')
    try {
      await file.write(Buffer.from('corrupt'), 0, 7, 1500 * KIB)
    } finally {
      await file.close()
    }
    const target = await newStore()
    await expect(syncSnapshot(id, fileEnd(root), shoalEnd(target))).rejects.toMatchObject({ code: 'OBJECT_CORRUPT' })
    expect(await target.bundleIds()).toEqual([])
    expect(await target.hasObject(big)).toBe(false)
    expect(await listFiles(target.layout.tmp)).toEqual([])
  })
})
