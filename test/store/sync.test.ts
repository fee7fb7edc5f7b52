import { randomBytes } from 'node:crypto'
import { mkdir, open as openFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { bundleObjects, snapdirId } from '../../src/manifest/index.js'
import { exportTree, FileStore, openStore, pushTree, shardHash, syncSnapshot, verifyStore, type Store, type SyncEndpoint } from '../../src/store/index.js'
import { b3sumManifest, b3sumOfBytes, b3sumOfFile } from '../helpers/independent-hashes.js'
import { listFiles } from '../helpers/store-snapshot.js'
import { BIG_SIZE, SNAPDIR_SYMLINK_GOLDEN, SNAPDIR_SYMLINK_GOLDEN_ID, symlinkTree } from '../helpers/symlink-tree.js'
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

  it('round-trips a tree with internal symlinks through a file store: snapdir\'s manifest there, the same bundle back', async () => {
    const tree = await tempDir()
    await symlinkTree(tree)
    const source = await newStore()
    const pushed = await pushTree(source, tree)
    expect(pushed.bundle.manifestText).toBe(SNAPDIR_SYMLINK_GOLDEN)
    const root = await tempDir()
    const out = await syncSnapshot(pushed.bundleId, shoalEnd(source), fileEnd(root))
    expect(out.id).toBe(SNAPDIR_SYMLINK_GOLDEN_ID)
    expect(await readFile(join(root, '.manifests', ...shardHash(out.id)), 'utf8')).toBe(SNAPDIR_SYMLINK_GOLDEN)
    // Three objects (a.txt, x, big.bin), each stored once at its real size whatever links name it.
    expect(out).toMatchObject({ copiedObjects: 3, copiedBytes: 6 + 3 + BIG_SIZE })

    const target = await newStore()
    const back = await syncSnapshot(out.id, fileEnd(root), shoalEnd(target))
    expect(back.id).toBe(pushed.bundleId)
    expect(await verifyStore(target)).toMatchObject({ ok: true, objectsChecked: 3, bytesChecked: 6 + 3 + BIG_SIZE })
    const checkout = join(await tempDir(), 'checkout')
    await exportTree(target, back.id, checkout)
    // Buffer.equals: vitest's deep equality walks 1.5 MiB element by element, 20-27 s of CPU at load ~15.
    expect((await readFile(join(checkout, 'link to big'))).equals(await readFile(join(tree, 'big.bin')))).toBe(true)
  })

  it('publishes nothing into a file store when a later object of the source is damaged', async () => {
    const { one } = await trees()
    const source = await newStore()
    const { bundleId, bundle } = await pushTree(source, one)
    // Damage the object that sorts last, so the others were read (and once, published) before it.
    const last = bundleObjects(bundle).at(-1)!.hash
    await writeFile(source.objectPath(last), 'not the bytes')
    const root = await tempDir()
    await expect(syncSnapshot(bundleId, shoalEnd(source), fileEnd(root))).rejects.toMatchObject({ code: 'OBJECT_CORRUPT', message: expect.stringContaining('nothing was synced') })
    expect(await listFiles(root)).toEqual([])
  })

  it('replaces a damaged copy a file store already holds instead of skipping it', async () => {
    const { one } = await trees()
    const source = await newStore()
    const { bundleId, bundle } = await pushTree(source, one)
    const root = await tempDir()
    await syncSnapshot(bundleId, shoalEnd(source), fileEnd(root))
    const victim = [...bundle.chunkTables.keys()][0]!
    const held = join(root, '.objects', ...shardHash(victim))
    await writeFile(held, 'damaged')
    const again = await syncSnapshot(bundleId, shoalEnd(source), fileEnd(root))
    expect(again).toMatchObject({ copiedObjects: 1, repairedObjects: 1, skippedObjects: 2 })
    expect(await b3sumOfFile(held)).toBe(victim)
  })

  it('refuses an --id that is not a snapdir ID when reading a file store, before touching any path', async () => {
    const root = await tempDir()
    const target = await newStore()
    await expect(syncSnapshot('../../etc/passwd', fileEnd(root), shoalEnd(target))).rejects.toMatchObject({ code: 'SNAPSHOT_ID_INVALID' })
  })
})
