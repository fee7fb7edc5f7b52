import { createHash } from 'node:crypto'
import { cp, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import { MAX_DESCRIPTOR_DEPTH, OCI_IMAGE_CONFIG, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, OCI_LAYER_TAR, isOciLayout, readRefs, validateLayout, type OciError } from '../../src/oci/index.js'
import { makeTempDir, removeTempDir } from './helpers.js'

interface IndexJson { schemaVersion: number, manifests: Array<{ digest: string, size: number, mediaType: string }> }
interface ManifestJson { config: { digest: string }, layers: Array<{ digest: string }> }

async function readJson<T> (path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T
}

function blob (layout: string, digest: string): string {
  return join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length))
}

async function errorOf (promise: Promise<unknown>): Promise<OciError> {
  try {
    await promise
  } catch (err) {
    return err as OciError
  }
  throw new Error('expected a rejection')
}

interface Written { mediaType: string, digest: string, size: number }

/**
 * A layout written by hand: `wrap` indexes around one manifest (an index naming an index …),
 * so the nested-index rules and the places messages name can be checked. Returns the
 * descriptors written, outermost index first, then the manifest, its config and its layer.
 */
async function nestedLayout (layout: string, wrap: number, edit: { manifest?: Record<string, unknown> } = {}): Promise<Written[]> {
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true })
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion": "1.0.0"}')
  const put = async (mediaType: string, bytes: Buffer): Promise<Written> => {
    const hex = createHash('sha256').update(bytes).digest('hex')
    await writeFile(join(layout, 'blobs', 'sha256', hex), bytes)
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length }
  }
  const config = await put(OCI_IMAGE_CONFIG, Buffer.from('{"architecture":"amd64","os":"linux"}'))
  const layer = await put(OCI_LAYER_TAR, Buffer.from('not really a tar'))
  const manifest = await put(OCI_IMAGE_MANIFEST, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_IMAGE_MANIFEST, config, layers: [layer], ...edit.manifest })))
  const written = [manifest, config, layer]
  let top = manifest
  for (let i = 0; i < wrap; i++) {
    top = await put(OCI_IMAGE_INDEX, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_IMAGE_INDEX, manifests: [{ ...top, platform: { os: 'linux', architecture: 'amd64' } }] })))
    written.unshift(top)
  }
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [top] }))
  return written
}

describe('validateLayout', () => {
  let dir: string | undefined
  let images: GeneratedImages
  let copies = 0

  beforeAll(async () => {
    dir = await makeTempDir('validate')
    images = await generateImages(join(dir, 'images'), { baseBytes: 2 * 1024 * 1024 })
  })
  afterAll(async () => { await removeTempDir(dir) })

  /** A private copy of app2 (three layers) to damage, with its manifest parsed. */
  async function copyOfApp2 (): Promise<{ layout: string, manifestDigest: string, manifest: ManifestJson }> {
    const layout = join(dir!, `copy-${copies++}`)
    await cp(images.layouts.app2!, layout, { recursive: true })
    const manifestDigest = (await readJson<IndexJson>(join(layout, 'index.json'))).manifests[0]!.digest
    return { layout, manifestDigest, manifest: await readJson<ManifestJson>(blob(layout, manifestDigest)) }
  }

  it('accepts every generated layout and reports its blobs', async () => {
    for (const name of ['app1', 'app2', 'app3', 'multi']) {
      const report = await validateLayout(images.layouts[name]!)
      expect(report.unreferenced).toEqual([])
      expect(report.blobBytes).toBeGreaterThan(2 * 1024 * 1024)
    }
    // multi: image index, two manifests, two configs, base layer, two platform layers.
    expect((await validateLayout(images.layouts.multi!)).blobCount).toBe(8)
  })

  it('lists the refs of index.json with both name annotations', async () => {
    const refs = await readRefs(images.layouts.multi!)
    expect(refs).toEqual([{
      digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) as unknown,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      size: expect.any(Number) as unknown,
      refName: '1.0',
      imageName: 'registry.example.com/shoal/multi:1.0',
    }])
  })

  it('tells a layout from other directories', async () => {
    expect(await isOciLayout(images.layouts.app1!)).toBe(true)
    expect(await isOciLayout(join(images.layouts.app1!, 'blobs'))).toBe(false)
  })

  it('refuses a blob whose bytes changed, naming the blob', async () => {
    const { layout, manifest } = await copyOfApp2()
    const layer = manifest.layers[2]!.digest
    const handle = await open(blob(layout, layer), 'r+')
    await handle.write(Buffer.from([0xff, 0x00, 0xff]), 0, 3, 100)
    await handle.close()
    const err = await errorOf(validateLayout(layout))
    expect(err.code).toBe('OCI_BLOB_DIGEST_MISMATCH')
    expect(err.name).toBe('OciBlobDigestMismatchError')
    expect(err.message).toContain(`blobs/sha256/${layer.slice(7)}`)
  })

  it('checks a manifest\'s digest before trusting what it says', async () => {
    const { layout, manifestDigest, manifest } = await copyOfApp2()
    // Same size, other bytes: a manifest that now names a layer that is not there.
    const forged = JSON.stringify(manifest).replace(manifest.layers[1]!.digest.slice(7, 17), '0123456789')
    await writeFile(blob(layout, manifestDigest), forged)
    const err = await errorOf(validateLayout(layout))
    expect(err.code).toBe('OCI_BLOB_DIGEST_MISMATCH')
    expect(err.message).toContain(manifestDigest.slice(7))
  })

  it('refuses a layout missing a referenced blob, naming it and who refers to it', async () => {
    const { layout, manifestDigest, manifest } = await copyOfApp2()
    await rm(blob(layout, manifest.config.digest))
    const err = await errorOf(validateLayout(layout))
    expect(err.code).toBe('OCI_BLOB_MISSING')
    expect(err.message).toContain(manifest.config.digest)
    expect(err.message).toContain(`manifest ${manifestDigest} config`)
  })

  it('refuses a descriptor whose size is wrong', async () => {
    const { layout } = await copyOfApp2()
    const index = await readJson<IndexJson>(join(layout, 'index.json'))
    index.manifests[0]!.size += 1
    await writeFile(join(layout, 'index.json'), JSON.stringify(index))
    const err = await errorOf(validateLayout(layout))
    expect(err.code).toBe('OCI_BLOB_SIZE_MISMATCH')
    expect(err.message).toContain(`says ${index.manifests[0]!.size}`)
  })

  it('refuses an image index missing a platform\'s manifest unless asked to allow it (ctr export without --all-platforms)', async () => {
    const layout = join(dir!, `copy-${copies++}`)
    await cp(images.layouts.multi!, layout, { recursive: true })
    const indexDigest = (await readJson<IndexJson>(join(layout, 'index.json'))).manifests[0]!.digest
    const arm = (await readJson<IndexJson>(blob(layout, indexDigest))).manifests[1]!.digest
    await rm(blob(layout, arm))
    const err = await errorOf(validateLayout(layout))
    expect(err.code).toBe('OCI_BLOB_MISSING')
    expect(err.message).toContain('platform linux/arm64/v8')
    expect(err.message).toContain('--all-platforms')
    const report = await validateLayout(layout, { allowMissingPlatforms: true })
    expect(report.missingPlatformManifests).toEqual([arm])
    // The arm64 config and layer are still on disk but nothing reachable names them now.
    expect(report.unreferenced).toHaveLength(2)
  })

  it('refuses digest algorithms other than sha256', async () => {
    const { layout } = await copyOfApp2()
    const index = await readJson<IndexJson>(join(layout, 'index.json'))
    index.manifests[0]!.digest = `sha512:${'ab'.repeat(64)}`
    await writeFile(join(layout, 'index.json'), JSON.stringify(index))
    expect((await errorOf(validateLayout(layout))).code).toBe('OCI_UNSUPPORTED_DIGEST')
  })

  it('refuses an index.json over the 4 MiB limit without parsing it', async () => {
    const { layout } = await copyOfApp2()
    const index = await readJson<IndexJson & { annotations: Record<string, string> }>(join(layout, 'index.json'))
    index.annotations = { padding: 'x'.repeat(4 * 1024 * 1024) }
    await writeFile(join(layout, 'index.json'), JSON.stringify(index))
    const err = await errorOf(validateLayout(layout))
    expect(err.code).toBe('OCI_INVALID_INDEX')
    expect(err.message).toContain('larger than')
  })

  it('trusts the caller\'s sha256 of a blob instead of reading it again', async () => {
    const { layout, manifest } = await copyOfApp2()
    const layer = manifest.layers[0]!.digest.slice(7)
    const knownRight = new Map([[`blobs/sha256/${layer}`, layer]])
    await expect(validateLayout(layout, { knownSha256: knownRight })).resolves.toMatchObject({ blobCount: 5 })
    // A wrong "known" digest is reported, which shows the file was not re-hashed.
    const knownWrong = new Map([[`blobs/sha256/${layer}`, 'f'.repeat(64)]])
    const err = await errorOf(validateLayout(layout, { knownSha256: knownWrong }))
    expect(err.code).toBe('OCI_BLOB_DIGEST_MISMATCH')
    expect(err.message).toContain(`sha256:${'f'.repeat(64)}`)
  })

  it('walks indexes nested in indexes, naming the place of what is wrong, and refuses them deeper than its bound', async () => {
    const nested = join(dir!, `copy-${copies++}`)
    const [, inner, manifest, , layer] = await nestedLayout(nested, 2)
    await expect(validateLayout(nested)).resolves.toMatchObject({ blobCount: 5, unreferenced: [] })
    await rm(blob(nested, layer!.digest))
    let err = await errorOf(validateLayout(nested))
    expect(err.code).toBe('OCI_BLOB_MISSING')
    expect(err.message).toContain(`manifest ${manifest!.digest} layers[0]`)
    await rm(blob(nested, manifest!.digest))
    err = await errorOf(validateLayout(nested))
    expect(err.code).toBe('OCI_BLOB_MISSING')
    expect(err.message).toContain(`image index ${inner!.digest} manifests[0] (platform linux/amd64)`)
    expect((await validateLayout(nested, { allowMissingPlatforms: true })).missingPlatformManifests).toEqual([manifest!.digest])

    // index.json's own entry is a level: MAX_DESCRIPTOR_DEPTH indexes in all pass, one more does not.
    const deepest = join(dir!, `copy-${copies++}`)
    await nestedLayout(deepest, MAX_DESCRIPTOR_DEPTH)
    await expect(validateLayout(deepest)).resolves.toMatchObject({ blobCount: MAX_DESCRIPTOR_DEPTH + 3 })
    const deeper = join(dir!, `copy-${copies++}`)
    const chain = await nestedLayout(deeper, MAX_DESCRIPTOR_DEPTH + 1)
    err = await errorOf(validateLayout(deeper))
    expect(err.code).toBe('OCI_INVALID_INDEX')
    expect(err.message).toContain(`nest deeper than ${MAX_DESCRIPTOR_DEPTH} levels at image index ${chain[MAX_DESCRIPTOR_DEPTH - 1]!.digest} manifests[0]`)
  })

  it('refuses a manifest whose mediaType disagrees with its descriptor, and one with a bad descriptor, naming where', async () => {
    const disagreeing = join(dir!, `copy-${copies++}`)
    const [index, manifest] = await nestedLayout(disagreeing, 1, { manifest: { mediaType: OCI_IMAGE_INDEX } })
    let err = await errorOf(validateLayout(disagreeing))
    expect(err.code).toBe('OCI_INVALID_MANIFEST')
    expect(err.message).toContain(`${OCI_IMAGE_MANIFEST} ${manifest!.digest} (referenced by image index ${index!.digest} manifests[0]) says its mediaType is "${OCI_IMAGE_INDEX}"`)
    const badLayer = join(dir!, `copy-${copies++}`)
    const [, written] = await nestedLayout(badLayer, 1, { manifest: { layers: [{ mediaType: OCI_LAYER_TAR, digest: 'sha256:abc', size: 1 }] } })
    err = await errorOf(validateLayout(badLayer))
    expect(err.message).toContain(`manifest ${written!.digest} layers[0]`)
    const noLayers = join(dir!, `copy-${copies++}`)
    const [, bare] = await nestedLayout(noLayers, 1, { manifest: { layers: undefined } })
    err = await errorOf(validateLayout(noLayers))
    expect(err.code).toBe('OCI_INVALID_MANIFEST')
    expect(err.message).toContain(`manifest ${bare!.digest} has no "layers" array`)
  })

  it('stops when its signal is aborted', async () => {
    const err = await errorOf(validateLayout(images.layouts.app1!, { signal: AbortSignal.abort() }))
    expect(err.name).toBe('AbortError')
  })
})
