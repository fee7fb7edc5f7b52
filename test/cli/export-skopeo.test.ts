import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { generateImages, GENERATED_REF_NAME, type GeneratedImages } from '../../scripts/gen-images.js'
import { skopeo } from '../helpers/independent-hashes.js'
import { shoalOk } from '../helpers/shoal-cli.js'
import { tarEntryNames } from '../helpers/tar-builder.js'
import { treeManifest } from '../helpers/tree-manifest.js'
import { useWorkDir } from '../helpers/work-dir.js'

const MIB = 1024 * 1024
const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name'

interface IndexJson { manifests: Array<{ digest: string, mediaType: string, annotations?: Record<string, string>, platform?: { architecture: string } }> }

async function readIndex (layout: string): Promise<IndexJson> {
  return JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as IndexJson
}

async function blobNames (layout: string): Promise<string[]> {
  return (await readdir(join(layout, 'blobs', 'sha256'))).sort()
}

describe('shoal export and skopeo', () => {
  const work = useWorkDir('shoal-cli-export-')
  let images: GeneratedImages
  let data: string
  let app1Id: string

  beforeAll(async () => {
    images = await generateImages(join(work(), 'images'), { baseBytes: 5 * MIB, seed: 12 })
    data = join(work(), 'data')
    app1Id = await shoalOk(data, ['push', images.layouts.app1!])
  })

  it('checks the premise: the generator names each image 1.0 for skopeo\'s oci: references', async () => {
    const index = await readIndex(images.layouts.app1!)
    expect(index.manifests).toHaveLength(1)
    expect(index.manifests[0]!.annotations?.[REF_NAME_ANNOTATION]).toBe(GENERATED_REF_NAME)
    expect(GENERATED_REF_NAME).toBe('1.0')
  })

  it('exports a directory whose `shoal manifest` equals the original\'s, which skopeo inspects and copies', async () => {
    const exported = join(work(), 'export-dir')
    await shoalOk(data, ['export', app1Id, exported])
    expect(await shoalOk(undefined, ['manifest', exported])).toBe(await shoalOk(undefined, ['manifest', images.layouts.app1!]))

    const inspected = JSON.parse(await skopeo(['inspect', `oci:${exported}:1.0`])) as { Digest: string, Layers: string[] }
    const original = await readIndex(images.layouts.app1!)
    expect(inspected.Digest).toBe(original.manifests[0]!.digest)
    expect(inspected.Layers).toContain(images.baseLayer.digest)

    const copied = join(work(), 'skopeo-copy-of-export-dir')
    await skopeo(['copy', `oci:${exported}:1.0`, `oci:${copied}:1.0`])
    expect(await blobNames(copied)).toEqual(await blobNames(images.layouts.app1!))
  })

  it('exports an oci-archive that skopeo copies to an oci: layout, and that pushes back to the same bundle ID', async () => {
    const archive = join(work(), 'export.tar')
    await shoalOk(data, ['export', 'registry.example.com/shoal/app1:1.0', archive])
    const names = await tarEntryNames(archive)
    expect(names).toEqual(expect.arrayContaining(['oci-layout', 'index.json', `blobs/sha256/${images.baseLayer.digest.slice(7)}`]))

    const copied = join(work(), 'skopeo-copy-of-export-tar')
    await skopeo(['copy', `oci-archive:${archive}:1.0`, `oci:${copied}:1.0`])
    expect(await blobNames(copied)).toEqual(await blobNames(images.layouts.app1!))
    expect((await readIndex(copied)).manifests[0]!.digest).toBe((await readIndex(images.layouts.app1!)).manifests[0]!.digest)

    // Round trip through a fresh store: the archive holds exactly the pushed tree.
    expect(await shoalOk(join(work(), 'data-roundtrip'), ['push', archive])).toBe(app1Id)
  })

  it('pushes skopeo\'s oci-archive and skopeo\'s oci: layout of one image to the same bundle ID', async () => {
    const archive = join(work(), 'skopeo-B.tar')
    const layout = join(work(), 'skopeo-C')
    await skopeo(['copy', `oci:${images.layouts.app1!}:1.0`, `oci-archive:${archive}:1.0`])
    await skopeo(['copy', `oci:${images.layouts.app1!}:1.0`, `oci:${layout}:1.0`])
    const target = join(work(), 'data-skopeo')
    const fromArchive = await shoalOk(target, ['push', archive])
    const fromLayout = await shoalOk(target, ['push', layout])
    expect(fromArchive).toBe(fromLayout)
    // One bundle, not two.
    expect(JSON.parse(await shoalOk(target, ['--json', 'ls']))).toHaveLength(1)
  })

  it('gives different bundle IDs when skopeo writes the archive without a tag: its index.json has no ref.name (the only difference)', async () => {
    // `skopeo copy oci:A:1.0 oci-archive:B.tar` (no tag) writes index.json without the
    // ref.name annotation, so the trees differ in index.json and nothing else.
    const archive = join(work(), 'skopeo-untagged.tar')
    const layout = join(work(), 'skopeo-tagged')
    await skopeo(['copy', `oci:${images.layouts.app1!}:1.0`, `oci-archive:${archive}`])
    await skopeo(['copy', `oci:${images.layouts.app1!}:1.0`, `oci:${layout}:1.0`])
    const target = join(work(), 'data-untagged')
    expect(await shoalOk(target, ['push', archive])).not.toBe(await shoalOk(target, ['push', layout]))

    const extracted = join(work(), 'untagged-export')
    const archiveId = (JSON.parse(await shoalOk(target, ['--json', 'ls'])) as Array<{ id: string }>)[0]!.id
    await shoalOk(target, ['export', archiveId, extracted])
    const differing = (a: string, b: string): string[] => {
      const left = new Set(a.split('\n'))
      return b.split('\n').filter(line => !left.has(line)).map(line => line.slice(line.indexOf(' ./') + 1))
    }
    expect(differing(await treeManifest(layout), await treeManifest(extracted))).toEqual(['./', './index.json'])
    expect((await readIndex(extracted)).manifests[0]!.annotations).toBeUndefined()
  })

  it('pushes, exports and skopeo-inspects the multi-platform image', async () => {
    const target = join(work(), 'data-multi')
    const id = await shoalOk(target, ['push', images.layouts.multi!])
    const exported = join(work(), 'export-multi')
    await shoalOk(target, ['export', 'registry.example.com/shoal/multi:1.0', exported])
    expect(await treeManifest(exported)).toBe(await treeManifest(images.layouts.multi!))
    expect((await shoalOk(target, ['verify', id])).startsWith('ok:')).toBe(true)

    const index = await readIndex(images.layouts.multi!)
    const indexDigest = index.manifests[0]!.digest
    const raw = await skopeo(['inspect', '--raw', `oci:${exported}:1.0`])
    expect(raw).toBe(await readFile(join(images.layouts.multi!, 'blobs', 'sha256', indexDigest.slice(7)), 'utf8'))
    const imageIndex = JSON.parse(raw) as IndexJson
    expect(imageIndex.manifests.map(m => m.platform?.architecture)).toEqual(['amd64', 'arm64'])

    // skopeo picks the arm64 image from the exported index (its Digest is the index's own).
    const arm = JSON.parse(await skopeo(['--override-arch', 'arm64', '--override-variant', 'v8', 'inspect', `oci:${exported}:1.0`])) as { Digest: string, Architecture: string, Layers: string[] }
    const armManifest = JSON.parse(await readFile(join(exported, 'blobs', 'sha256', imageIndex.manifests[1]!.digest.slice(7)), 'utf8')) as { layers: Array<{ digest: string }> }
    expect(arm).toMatchObject({ Digest: indexDigest, Architecture: 'arm64', Layers: armManifest.layers.map(l => l.digest) })
  })
})
