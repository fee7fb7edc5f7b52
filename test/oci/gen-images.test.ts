import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import tar from 'tar-stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import { createSha256 } from '../../src/hash/index.js'
import { describeTree, makeTempDir, removeTempDir, skopeo } from './helpers.js'

const BASE_BYTES = 3 * 1024 * 1024 + 12345

interface SkopeoInspect { Digest: string, Architecture: string, Layers: string[] }

describe('gen-images', () => {
  let dir: string | undefined
  let images: GeneratedImages

  beforeAll(async () => {
    dir = await makeTempDir('gen')
    // A hostile umask: the generator must set modes itself.
    const previous = process.umask(0o077)
    try {
      images = await generateImages(join(dir, 'a'), { baseBytes: BASE_BYTES, seed: 7 })
    } finally {
      process.umask(previous)
    }
  })
  afterAll(async () => { await removeTempDir(dir) })

  it('writes the same bytes and modes on every run with the same options, other bytes with another seed', async () => {
    const again = await generateImages(join(dir!, 'b'), { baseBytes: BASE_BYTES, seed: 7 })
    const other = await generateImages(join(dir!, 'c'), { baseBytes: BASE_BYTES, seed: 8 })
    for (const name of ['app1', 'app2', 'app3', 'multi']) {
      const first = await describeTree(images.layouts[name]!)
      expect(await describeTree(again.layouts[name]!)).toEqual(first)
      expect(await readFile(join(other.layouts[name]!, 'index.json'))).not.toEqual(await readFile(join(images.layouts[name]!, 'index.json')))
    }
    expect(again.baseLayer).toEqual(images.baseLayer)
    expect(other.baseLayer.digest).not.toBe(images.baseLayer.digest)
  })

  it('sets files to 0644 and directories to 0755 whatever the umask', async () => {
    const tree = await describeTree(images.layouts.app1!)
    const modes = new Set(Object.entries(tree).map(([path, entry]) => `${path.endsWith('/') ? 'dir' : 'file'} ${entry.mode}`))
    expect([...modes].sort()).toEqual(['dir 755', 'file 644'])
  })

  it('writes a base layer of the requested size whose diff_id is the sha256 of the uncompressed tar', async () => {
    const hex = images.baseLayer.digest.slice('sha256:'.length)
    const diffHash = createSha256()
    let fileBytes = 0
    const extract = tar.extract()
    const reading = pipeline(createReadStream(join(images.layouts.app1!, 'blobs', 'sha256', hex)), createGunzip(), async function * (source) {
      for await (const piece of source) { diffHash.update(piece as Buffer); yield piece as Buffer }
    }, extract)
    for await (const entry of extract) {
      if (entry.header.type === 'file') fileBytes += entry.header.size
      entry.resume()
    }
    await reading
    expect(fileBytes).toBe(BASE_BYTES)
    const manifestDigest = JSON.parse(await readFile(join(images.layouts.app1!, 'index.json'), 'utf8')).manifests[0].digest as string
    const manifest = JSON.parse(await readFile(join(images.layouts.app1!, 'blobs', 'sha256', manifestDigest.slice(7)), 'utf8'))
    const config = JSON.parse(await readFile(join(images.layouts.app1!, 'blobs', 'sha256', (manifest.config.digest as string).slice(7)), 'utf8'))
    expect(config.rootfs.diff_ids[0]).toBe(`sha256:${diffHash.digest('hex')}`)
    expect(manifest.layers[0]).toEqual(images.baseLayer)
  })

  it('writes layouts skopeo inspects: three single images sharing a base layer', async () => {
    const layerCounts: number[] = []
    for (const name of ['app1', 'app2', 'app3']) {
      const layout = images.layouts[name]!
      const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'))
      expect(index.manifests[0].annotations).toEqual({
        'io.containerd.image.name': `registry.example.com/shoal/${name}:1.0`,
        'org.opencontainers.image.ref.name': '1.0',
      })
      const inspected = JSON.parse(await skopeo(['inspect', `oci:${layout}:1.0`])) as SkopeoInspect
      expect(inspected.Digest).toBe(index.manifests[0].digest)
      expect(inspected.Layers[0]).toBe(images.baseLayer.digest)
      layerCounts.push(inspected.Layers.length)
    }
    expect(layerCounts).toEqual([2, 3, 2])
  })

  it('writes a multi-platform index skopeo reads for linux/amd64 and linux/arm64', async () => {
    const layout = images.layouts.multi!
    const raw = JSON.parse(await skopeo(['inspect', '--raw', `oci:${layout}:1.0`]))
    expect(raw.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(raw.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture)).toEqual(['amd64', 'arm64'])
    const arm = JSON.parse(await skopeo(['inspect', '--override-arch', 'arm64', `oci:${layout}:1.0`])) as SkopeoInspect
    expect(arm.Architecture).toBe('arm64')
    // skopeo 1.9 reports the digest of what the ref names (the image index), not of the chosen manifest.
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'))
    expect(arm.Digest).toBe(index.manifests[0].digest)
    expect(arm.Layers[0]).toBe(images.baseLayer.digest)
  })

  it('writes layouts skopeo copies into an oci-archive', async () => {
    const archive = join(dir!, 'app1.tar')
    await skopeo(['copy', '-q', `oci:${images.layouts.app1!}:1.0`, `oci-archive:${archive}`])
    const inspected = JSON.parse(await skopeo(['inspect', `oci-archive:${archive}`])) as SkopeoInspect
    expect(inspected.Layers).toHaveLength(2)
  })
})
