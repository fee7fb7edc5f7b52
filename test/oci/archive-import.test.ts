import { createReadStream, createWriteStream } from 'node:fs'
import { readFile, stat, truncate, writeFile, mkdir, copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import { sha256Hex } from '../../src/hash/index.js'
import { extractArchive, readRefs, validateLayout, type OciError } from '../../src/oci/index.js'
import { describeTree, makeTempDir, removeTempDir, skopeo, writeTar, type TarSpec } from './helpers.js'

async function errorOf (promise: Promise<unknown>): Promise<OciError> {
  try {
    await promise
  } catch (err) {
    return err as OciError
  }
  throw new Error('expected a rejection')
}

async function exists (path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}

/** A minimal legacy `docker save` archive: one image, one layer, the way Docker < 25 lays it out. */
function dockerSaveSpecs (options: { layer?: Buffer, diffId?: string, repoTags?: string[] | null, linkLayer?: boolean } = {}): TarSpec[] {
  const layer = options.layer ?? Buffer.concat([Buffer.from('pretend this is a layer tar\n'), Buffer.alloc(2048)])
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/true'] },
    rootfs: { type: 'layers', diff_ids: [options.diffId ?? `sha256:${sha256Hex(layer)}`] },
  }))
  const configName = `${sha256Hex(config)}.json`
  const layerId = 'a'.repeat(64)
  return [
    { name: `${layerId}/`, type: 'directory' },
    { name: `${layerId}/VERSION`, content: '1.0' },
    { name: `${layerId}/json`, content: '{}' },
    // Docker links a layer two images share; here the link comes before its target.
    options.linkLayer === true
      ? { name: `${layerId}/layer.tar`, type: 'symlink', linkname: `../${sha256Hex(layer)}.tar` }
      : { name: `${layerId}/layer.tar`, content: layer },
    { name: configName, content: config },
    ...(options.linkLayer === true ? [{ name: `${sha256Hex(layer)}.tar`, content: layer }] : []),
    { name: 'manifest.json', content: JSON.stringify([{ Config: configName, RepoTags: options.repoTags === undefined ? ['shoal-test:1.0'] : options.repoTags, Layers: [`${layerId}/layer.tar`] }]) },
    { name: 'repositories', content: '{}' },
  ]
}

describe('extractArchive', () => {
  let dir: string | undefined
  let images: GeneratedImages
  let app1: string
  /** `skopeo copy oci:app1:1.0 oci-archive:X:1.0`, and the layout `skopeo copy oci:app1:1.0 oci:Y:1.0` writes. */
  let taggedArchive: string
  let skopeoLayout: string
  let n = 0
  const fresh = (label: string): string => join(dir!, `${label}-${n++}`)

  beforeAll(async () => {
    dir = await makeTempDir('import')
    images = await generateImages(join(dir, 'images'), { baseBytes: 4 * 1024 * 1024 })
    app1 = images.layouts.app1!
    taggedArchive = join(dir, 'app1-tagged.tar')
    skopeoLayout = join(dir, 'app1-skopeo-layout')
    await skopeo(['copy', '-q', `oci:${app1}:1.0`, `oci-archive:${taggedArchive}:1.0`])
    await skopeo(['copy', '-q', `oci:${app1}:1.0`, `oci:${skopeoLayout}:1.0`])
  })
  afterAll(async () => { await removeTempDir(dir) })

  it('gives the tree (bytes and modes) skopeo writes as a layout, from skopeo\'s oci-archive', async () => {
    const dest = fresh('tagged')
    const result = await extractArchive(taggedArchive, dest)
    expect(result.format).toBe('oci-layout')
    // skopeo ran with umask 022, where its layout modes happen to be 0644/0755 too.
    expect(await describeTree(dest)).toEqual(await describeTree(skopeoLayout))
    await expect(validateLayout(dest, { knownSha256: result.sha256 })).resolves.toMatchObject({ blobCount: 4 })
    expect(result.sha256.get('index.json')).toBe(sha256Hex(await readFile(join(dest, 'index.json'))))
  })

  it('normalizes modes to 0644/0755 where skopeo followed a restrictive umask', async () => {
    const archive = join(dir!, 'umask077.tar')
    const layout = fresh('umask077-layout')
    await skopeo(['copy', '-q', `oci:${app1}:1.0`, `oci-archive:${archive}:1.0`], { umask: '077' })
    await skopeo(['copy', '-q', `oci:${app1}:1.0`, `oci:${layout}:1.0`], { umask: '077' })
    const skopeoModes = new Set(Object.values(await describeTree(layout)).map(entry => entry.mode))
    // The fact that makes normalization necessary: skopeo's modes depend on the umask, and not uniformly.
    expect(skopeoModes).toEqual(new Set(['700', '600', '644']))
    const dest = fresh('umask077')
    await extractArchive(archive, dest)
    const tree = await describeTree(dest)
    expect(new Set(Object.values(tree).map(entry => entry.mode))).toEqual(new Set(['755', '644']))
    expect(Object.keys(tree)).toEqual(Object.keys(await describeTree(skopeoLayout)))
  })

  it('keeps the blobs of an untagged oci-archive byte for byte; skopeo drops the ref annotations there', async () => {
    const archive = join(dir!, 'untagged.tar')
    await skopeo(['copy', '-q', `oci:${app1}:1.0`, `oci-archive:${archive}`])
    const dest = fresh('untagged')
    await extractArchive(archive, dest)
    const tree = await describeTree(dest)
    const original = await describeTree(app1)
    for (const [path, entry] of Object.entries(original)) if (path.startsWith('blobs/')) expect(tree[path]).toEqual(entry)
    const refs = await readRefs(dest)
    expect(refs).toHaveLength(1)
    expect(refs[0]!.refName).toBeUndefined()
    expect(refs[0]!.digest).toBe((await readRefs(app1))[0]!.digest)
  })

  it('reads a gzip\'ed archive into the same tree as the plain one', async () => {
    const gzipped = join(dir!, 'app1.tar.gz')
    await pipeline(createReadStream(taggedArchive), createGzip({ level: 1 }), createWriteStream(gzipped))
    const dest = fresh('gzip')
    await extractArchive(gzipped, dest)
    expect(await describeTree(dest)).toEqual(await describeTree(skopeoLayout))
  })

  it('keeps only oci-layout, index.json and blobs from a ctr-style export (./ prefixes, 0444 blobs, manifest.json)', async () => {
    const archive = join(dir!, 'ctr-style.tar')
    const index = await readFile(join(app1, 'index.json'))
    const blobNames = Object.keys(await describeTree(join(app1, 'blobs', 'sha256'))).filter(name => name !== './')
    const specs: TarSpec[] = [
      { name: './', type: 'directory' },
      { name: './blobs/', type: 'directory' },
      { name: './blobs/sha256/', type: 'directory' },
      ...await Promise.all(blobNames.map(async name => ({ name: `./blobs/sha256/${name}`, content: await readFile(join(app1, 'blobs', 'sha256', name)), mode: 0o444 }))),
      { name: './index.json', content: index },
      { name: './manifest.json', content: '[{"Config":"blobs/sha256/x","RepoTags":[],"Layers":[]}]' },
      { name: './oci-layout', content: await readFile(join(app1, 'oci-layout')), mode: 0o444 },
    ]
    await writeTar(archive, specs)
    const dest = fresh('ctr-style')
    const result = await extractArchive(archive, dest)
    expect(result.format).toBe('oci-layout')
    expect(await describeTree(dest)).toEqual(await describeTree(app1))
    expect(await readRefs(dest)).toEqual(await readRefs(app1))
  })

  it('converts skopeo\'s docker-archive (legacy docker save, with symlinked layers) to a layout skopeo reads', async () => {
    const archive = join(dir!, 'docker-archive.tar')
    await skopeo(['copy', '-q', `oci:${images.layouts.app2!}:1.0`, `docker-archive:${archive}:registry.example.com/shoal/app2:1.0`])
    const dest = fresh('docker-archive')
    const result = await extractArchive(archive, dest)
    expect(result.format).toBe('docker-save')
    await validateLayout(dest, { knownSha256: result.sha256 })
    const [ref] = await readRefs(dest)
    // The converted manifest is written with OCI media types: skopeo 1.9 resolves `oci:DIR:TAG` only for those.
    expect(ref).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json', refName: '1.0', imageName: 'registry.example.com/shoal/app2:1.0' })
    const manifest = JSON.parse(await readFile(join(dest, 'blobs', 'sha256', ref!.digest.slice(7)), 'utf8'))
    const config = JSON.parse(await readFile(join(dest, 'blobs', 'sha256', (manifest.config.digest as string).slice(7)), 'utf8'))
    // Uncompressed layers are named by their diff_ids, as Docker and containerd name them.
    expect(manifest.layers.map((layer: { digest: string }) => layer.digest)).toEqual(config.rootfs.diff_ids)
    expect(new Set(manifest.layers.map((layer: { mediaType: string }) => layer.mediaType))).toEqual(new Set(['application/vnd.oci.image.layer.v1.tar']))
    const inspected = JSON.parse(await skopeo(['inspect', `oci:${dest}:1.0`]))
    expect(inspected.Digest).toBe(ref!.digest)
    expect(inspected.Layers).toEqual(config.rootfs.diff_ids)
  })

  it('converts a docker save archive: config bytes unchanged, short names expanded like containerd', async () => {
    const archive = join(dir!, 'docker-save.tar')
    const specs = dockerSaveSpecs()
    await writeTar(archive, specs)
    const dest = fresh('docker-save')
    const result = await extractArchive(archive, dest)
    await validateLayout(dest, { knownSha256: result.sha256 })
    const [ref] = await readRefs(dest)
    expect(ref).toMatchObject({ refName: '1.0', imageName: 'docker.io/library/shoal-test:1.0' })
    const configSpec = specs.find(spec => spec.name.endsWith('.json') && spec.name !== 'manifest.json') as { name: string, content: Buffer }
    expect(await readFile(join(dest, 'blobs', 'sha256', configSpec.name.replace('.json', '')))).toEqual(configSpec.content)
    const paths = Object.keys(await describeTree(dest))
    expect(paths.filter(path => !/^blobs\/sha256\/[0-9a-f]{64}$/.test(path))).toEqual(['./', 'blobs/', 'blobs/sha256/', 'index.json', 'oci-layout'])
    expect(paths).toHaveLength(5 + 3) // config, layer, manifest
    const inspected = JSON.parse(await skopeo(['inspect', `oci:${dest}`]))
    expect(inspected.Digest).toBe(ref!.digest)
  })

  it('follows a docker save symlink to a layer listed after it, and names untagged images nowhere', async () => {
    const archive = join(dir!, 'docker-save-link.tar')
    await writeTar(archive, dockerSaveSpecs({ linkLayer: true, repoTags: null }))
    const dest = fresh('docker-save-link')
    const result = await extractArchive(archive, dest)
    await validateLayout(dest, { knownSha256: result.sha256 })
    const refs = await readRefs(dest)
    expect(refs).toHaveLength(1)
    expect(refs[0]!.refName).toBeUndefined()
    expect(refs[0]!.imageName).toBeUndefined()
  })

  it('refuses a docker save layer whose bytes do not match the config\'s diff_id', async () => {
    const archive = join(dir!, 'docker-save-bad-layer.tar')
    await writeTar(archive, dockerSaveSpecs({ diffId: `sha256:${'0'.repeat(64)}` }))
    const dest = fresh('docker-save-bad')
    const err = await errorOf(extractArchive(archive, dest))
    expect(err.code).toBe('OCI_BLOB_DIGEST_MISMATCH')
    expect(err.message).toContain('layer.tar')
    expect(await exists(dest)).toBe(false)
  })

  it('refuses an archive cut in half, and removes what it wrote', async () => {
    const archive = join(dir!, 'half.tar')
    await copyFile(taggedArchive, archive)
    await truncate(archive, Math.floor((await stat(archive)).size / 2))
    const dest = fresh('half')
    const err = await errorOf(extractArchive(archive, dest))
    expect(err.name).toBe('ArchiveTruncatedError')
    expect(err.code).toBe('ARCHIVE_TRUNCATED')
    expect(err.message).toMatch(/ends early at entry "blobs\/sha256\/[0-9a-f]{64}".*re-export/)
    expect(await exists(dest)).toBe(false)
  })

  it('refuses an archive cut cleanly between two entries (no end-of-archive marker)', async () => {
    const archive = join(dir!, 'cut-at-boundary.tar')
    await copyFile(taggedArchive, archive)
    // skopeo ends its tars with exactly the two zero blocks; the last entry (oci-layout) ends just before.
    await truncate(archive, (await stat(archive)).size - 1024)
    const err = await errorOf(extractArchive(archive, fresh('boundary')))
    expect(err.code).toBe('ARCHIVE_TRUNCATED')
    expect(err.message).toContain('oci-layout')
  })

  it('refuses a truncated gzip stream', async () => {
    const gzipped = join(dir!, 'truncated.tar.gz')
    await pipeline(createReadStream(taggedArchive), createGzip({ level: 1 }), createWriteStream(gzipped))
    await truncate(gzipped, (await stat(gzipped)).size - 100)
    expect((await errorOf(extractArchive(gzipped, fresh('gz-truncated')))).code).toBe('ARCHIVE_TRUNCATED')
  })

  it('refuses entries with ".." segments, absolute paths and symlinks leaving the tree', async () => {
    const cases: Array<[string, TarSpec]> = [
      ['dotdot', { name: '../x', content: 'evil' }],
      ['nested-dotdot', { name: 'blobs/../../x', content: 'evil' }],
      ['absolute', { name: '/abs', content: 'evil' }],
      ['symlink-out', { name: 'blobs/sha256/' + 'b'.repeat(64), type: 'symlink', linkname: '../../../etc/passwd' }],
      ['symlink-absolute', { name: 'x', type: 'symlink', linkname: '/etc/passwd' }],
    ]
    for (const [label, spec] of cases) {
      const archive = join(dir!, `unsafe-${label}.tar`)
      await writeTar(archive, [{ name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' }, spec, { name: 'index.json', content: '{}' }])
      const dest = fresh(label)
      const err = await errorOf(extractArchive(archive, dest))
      expect([label, err.name]).toEqual([label, 'ArchiveUnsafePathError'])
      expect(err.code).toBe('ARCHIVE_UNSAFE_PATH')
      expect(await exists(dest)).toBe(false)
    }
    expect(await exists(join(dir!, 'x'))).toBe(false)
  })

  it('refuses a path that appears twice', async () => {
    const archive = join(dir!, 'duplicate.tar')
    await writeTar(archive, [{ name: 'index.json', content: '{}' }, { name: './index.json', content: '{"a":1}' }])
    const err = await errorOf(extractArchive(archive, fresh('duplicate')))
    expect(err.code).toBe('ARCHIVE_DUPLICATE_ENTRY')
  })

  it('refuses a file that is not a tar, and a tar that is not an image', async () => {
    const notTar = join(dir!, 'not-a-tar.bin')
    await writeFile(notTar, Buffer.alloc(4096, 7))
    expect((await errorOf(extractArchive(notTar, fresh('not-tar')))).code).toBe('ARCHIVE_CORRUPT')
    const plainTar = join(dir!, 'plain.tar')
    await writeTar(plainTar, [{ name: 'hello.txt', content: 'hi' }])
    expect((await errorOf(extractArchive(plainTar, fresh('plain')))).code).toBe('ARCHIVE_UNSUPPORTED')
  })

  it('stops when its signal is aborted, removing what it wrote', async () => {
    const dest = fresh('aborted')
    const err = await errorOf(extractArchive(taggedArchive, dest, { signal: AbortSignal.abort() }))
    expect(err.name).toBe('AbortError')
    expect(await exists(dest)).toBe(false)
  })

  it('writes only into an empty directory, and leaves a non-empty one alone', async () => {
    const dest = fresh('not-empty')
    await mkdir(dest)
    await writeFile(join(dest, 'keep.txt'), 'mine')
    expect((await errorOf(extractArchive(taggedArchive, dest))).code).toBe('ARCHIVE_DEST_NOT_EMPTY')
    expect(await readFile(join(dest, 'keep.txt'), 'utf8')).toBe('mine')
  })
})
