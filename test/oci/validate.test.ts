import { cp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import { isOciLayout, readRefs, validateLayout, type OciError } from '../../src/oci/index.js'
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

  it('stops when its signal is aborted', async () => {
    const err = await errorOf(validateLayout(images.layouts.app1!, { signal: AbortSignal.abort() }))
    expect(err.name).toBe('AbortError')
  })
})
