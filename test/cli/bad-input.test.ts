import { execFile } from 'node:child_process'
import { cp, mkdir, open, readdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import { shardHash } from '../../src/store/index.js'
import { b3sumOfBytes } from '../helpers/independent-hashes.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { listFiles, storeSnapshot, type StoreSnapshot } from '../helpers/store-snapshot.js'
import { tarEntryNames, writeTar } from '../helpers/tar-builder.js'
import { useTempDirs } from '../helpers/temp-dir.js'
import { useWorkDir } from '../helpers/work-dir.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024

interface IndexJson { manifests: Array<{ digest: string }> }
interface ImageManifest { config: { digest: string }, layers: Array<{ digest: string }> }

async function imageManifest (layout: string): Promise<ImageManifest> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as IndexJson
  return JSON.parse(await readFile(join(layout, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as ImageManifest
}

/** A refused command: exit 1, the error code and the words that name the problem on stderr. */
function expectRefused (result: { code: number | null, stderr: string }, code: string, ...mentions: string[]): void {
  expect(result.code, result.stderr).toBe(1)
  expect(result.stderr).toContain(`[${code}]`)
  for (const mention of mentions) expect(result.stderr).toContain(mention)
}

describe('bad input is refused with an error that names it, and the store is unchanged', () => {
  const work = useWorkDir('shoal-cli-bad-')
  const tempDir = useTempDirs()
  let images: GeneratedImages
  let template: string
  let before: StoreSnapshot
  /** An oci-archive of app2, an image the template store does not hold. */
  let app2Archive: string

  beforeAll(async () => {
    images = await generateImages(join(work(), 'images'), { baseBytes: 4 * MIB, seed: 13 })
    template = join(work(), 'template-data')
    await shoalOk(template, ['push', images.layouts.app1!])
    const plain = join(work(), 'plain')
    await mkdir(plain)
    await writeFile(join(plain, 'readme'), 'a plain tree\n')
    await shoalOk(template, ['push', plain])
    before = await storeSnapshot(template)
    expect(before.verifyCode).toBe(0)
    expect(before.ls).toHaveLength(2)

    const scratch = join(work(), 'scratch-data')
    await shoalOk(scratch, ['push', images.layouts.app2!])
    app2Archive = join(work(), 'app2.tar')
    await shoalOk(scratch, ['export', 'registry.example.com/shoal/app2:1.0', app2Archive])
  })

  /** A private copy of the populated store, byte for byte the template. */
  async function freshStore (): Promise<string> {
    const data = join(await tempDir(), 'data')
    await cp(template, data, { recursive: true })
    expect(await listFiles(join(data, 'objects'))).toEqual(before.objects)
    return data
  }

  async function expectUnchanged (data: string): Promise<void> {
    expect(await storeSnapshot(data)).toEqual(before)
  }

  it('refuses a blob whose bytes do not match its sha256 name (OCI_BLOB_DIGEST_MISMATCH)', async () => {
    const data = await freshStore()
    const layout = join(await tempDir(), 'app2')
    await cp(images.layouts.app2!, layout, { recursive: true })
    const layer = (await imageManifest(layout)).layers[1]!.digest.slice(7)
    const file = await open(join(layout, 'blobs', 'sha256', layer), 'r+')
    try {
      // Same size, one byte different.
      const { buffer } = await file.read(Buffer.alloc(1), 0, 1, 100)
      await file.write(Buffer.from([buffer[0]! ^ 0xff]), 0, 1, 100)
    } finally {
      await file.close()
    }
    expectRefused(await shoal(data, ['push', layout]), 'OCI_BLOB_DIGEST_MISMATCH', `blobs/sha256/${layer}`)
    await expectUnchanged(data)
  })

  it('refuses a layout whose manifest names a blob that is missing (OCI_BLOB_MISSING)', async () => {
    const data = await freshStore()
    const layout = join(await tempDir(), 'app3')
    await cp(images.layouts.app3!, layout, { recursive: true })
    const layer = (await imageManifest(layout)).layers[1]!.digest
    await rm(join(layout, 'blobs', 'sha256', layer.slice(7)))
    expectRefused(await shoal(data, ['push', layout]), 'OCI_BLOB_MISSING', layer, 'missing')
    await expectUnchanged(data)
  })

  it('refuses a truncated archive (ARCHIVE_TRUNCATED)', async () => {
    const data = await freshStore()
    const archive = join(await tempDir(), 'cut.tar')
    await cp(app2Archive, archive)
    // Half-way: inside the base layer's bytes.
    await truncate(archive, Math.floor((await stat(archive)).size / 2))
    expectRefused(await shoal(data, ['push', archive]), 'ARCHIVE_TRUNCATED', archive, 'cut short')
    await expectUnchanged(data)
  })

  it('refuses an archive that is cut exactly between two entries (no end-of-archive marker)', async () => {
    const data = await freshStore()
    const dir = await tempDir()
    const whole = join(dir, 'whole.tar')
    await writeTar(whole, [
      { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', content: '{"schemaVersion":2,"manifests":[]}' },
    ])
    // Two 512-byte headers, each file's data padded to 512: cut after the first entry.
    const archive = join(dir, 'cut.tar')
    await writeFile(archive, (await readFile(whole)).subarray(0, 1024))
    expectRefused(await shoal(data, ['push', archive]), 'ARCHIVE_TRUNCATED', 'end-of-archive')
    await expectUnchanged(data)
  })

  it('refuses tar entries with a ".." segment and with an absolute path (ARCHIVE_UNSAFE_PATH), writing nothing outside', async () => {
    const data = await freshStore()
    const dir = await tempDir()
    const layout = images.layouts.app1!
    const good = [
      { name: 'oci-layout', content: await readFile(join(layout, 'oci-layout')) },
      { name: 'index.json', content: await readFile(join(layout, 'index.json')) },
    ]
    const dotdot = join(dir, 'dotdot.tar')
    await writeTar(dotdot, [...good, { name: 'blobs/../../../escaped-dotdot', content: 'evil' }])
    const absoluteTarget = join(dir, 'escaped-absolute')
    const absolute = join(dir, 'absolute.tar')
    await writeTar(absolute, [...good, { name: absoluteTarget, content: 'evil' }])
    // The premise: the names are in the tars exactly as written.
    expect(await tarEntryNames(dotdot)).toContain('blobs/../../../escaped-dotdot')
    expect(await tarEntryNames(absolute)).toContain(absoluteTarget)

    expectRefused(await shoal(data, ['push', dotdot]), 'ARCHIVE_UNSAFE_PATH', 'blobs/../../../escaped-dotdot', '".." segment')
    expectRefused(await shoal(data, ['push', absolute]), 'ARCHIVE_UNSAFE_PATH', absoluteTarget, 'absolute')
    await expect(stat(absoluteTarget)).rejects.toMatchObject({ code: 'ENOENT' })
    for (const where of [data, join(data, 'tmp'), dir]) expect(await readdir(where).catch(() => [])).not.toContain('escaped-dotdot')
    await expectUnchanged(data)
  })

  it('refuses a tree with a symlink that leaves it (MANIFEST_SYMLINK_ESCAPES)', async () => {
    const data = await freshStore()
    const outside = await tempDir()
    await writeFile(join(outside, 'secret'), 'not part of the tree\n')
    const tree = join(await tempDir(), 'tree')
    await mkdir(join(tree, 'etc'), { recursive: true })
    await writeFile(join(tree, 'etc', 'ok'), 'fine\n')
    await symlink(join(outside, 'secret'), join(tree, 'etc', 'sneaky'))
    expectRefused(await shoal(data, ['push', tree]), 'MANIFEST_SYMLINK_ESCAPES', './etc/sneaky', 'outside the tree')
    await expectUnchanged(data)
  })

  it('refuses a manifest that names a path twice, from a file:// store (MANIFEST_DUPLICATE_PATH)', async () => {
    const data = await freshStore()
    // A real file store holding a plain tree: objects and manifest.
    const tree = join(await tempDir(), 'tree')
    await mkdir(join(tree, 'sub'), { recursive: true })
    await writeFile(join(tree, 'sub', 'a'), 'a\n')
    await writeFile(join(tree, 'b'), 'b\n')
    const scratch = join(await tempDir(), 'scratch')
    const fileStore = join(await tempDir(), 'file-store')
    const bundleId = await shoalOk(scratch, ['push', tree])
    const goodId = (JSON.parse(await shoalOk(undefined, ['--json', 'sync', '--id', bundleId, '--from', scratch, '--to', `file://${fileStore}`])) as { id: string }).id
    const goodText = await readFile(join(fileStore, '.manifests', ...shardHash(goodId)), 'utf8')
    expect(await b3sumOfBytes(goodText)).toBe(goodId)

    const lines = goodText.trimEnd().split('\n')
    const fileLine = lines.find(line => line.endsWith(' ./sub/a'))!
    const badText = [...lines, fileLine].join('\n') + '\n'
    const badId = await b3sumOfBytes(badText)
    await mkdir(join(fileStore, '.manifests', ...shardHash(badId).slice(0, 3)), { recursive: true })
    await writeFile(join(fileStore, '.manifests', ...shardHash(badId)), badText)

    expectRefused(await shoal(undefined, ['sync', '--id', badId, '--from', `file://${fileStore}`, '--to', data]), 'MANIFEST_DUPLICATE_PATH', '"./sub/a" appears twice')
    await expectUnchanged(data)
    // Control: the same store's good manifest syncs (into a throwaway store).
    await shoalOk(undefined, ['sync', '--id', goodId, '--from', `file://${fileStore}`, '--to', join(await tempDir(), 'control')])
  })
})

describe('a disk that fills during push', () => {
  const tempDir = useTempDirs()

  it('fails with DISK_FULL, says what to do, and leaves the store as it was', async ({ skip }) => {
    const mountPoint = await tempDir()
    try {
      await execFileAsync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mountPoint])
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? '')
      if (/permission denied|not permitted|must be superuser|EPERM/i.test(stderr)) skip(`cannot mount a tmpfs here (${stderr.trim()}); the DISK_FULL test needs root or CAP_SYS_ADMIN`)
      throw err
    }
    try {
      const data = join(mountPoint, 'data')
      const small = await tempDir()
      await writeFile(join(small, 'note'), 'fits\n')
      await shoalOk(data, ['push', small])
      const images = await generateImages(join(await tempDir(), 'images'), { baseBytes: 20 * MIB, seed: 14 })
      const snapshot = await storeSnapshot(data)
      expect(snapshot.verifyCode).toBe(0)

      const result = await shoal(data, ['push', images.layouts.app1!])
      expectRefused(result, 'DISK_FULL', 'disk filled up', 'nothing was stored', 'free space', 'try again')
      expect(await storeSnapshot(data)).toEqual(snapshot)
      // Staging was removed: the space is free again (tmpfs counts pages in use).
      const { stdout } = await execFileAsync('df', ['--output=used', '-B1', mountPoint])
      expect(Number(stdout.trim().split('\n')[1])).toBeLessThan(4 * MIB)
    } finally {
      await execFileAsync('umount', [mountPoint])
    }
  })
})
