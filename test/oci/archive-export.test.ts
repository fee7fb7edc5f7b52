import { createReadStream, createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import { extractArchive, packArchive, readRefs, type ArchiveEntry, type OciError } from '../../src/oci/index.js'
import { describeTree, layoutEntries, makeTempDir, removeTempDir, sha256OfFile, skopeo } from './helpers.js'

async function errorOf (promise: Promise<unknown>): Promise<OciError> {
  try {
    await promise
  } catch (err) {
    return err as OciError
  }
  throw new Error('expected a rejection')
}

async function readHeaders (archive: string): Promise<tar.Header[]> {
  const extract = tar.extract()
  const reading = pipeline(createReadStream(archive), extract)
  const headers: tar.Header[] = []
  for await (const entry of extract) {
    headers.push(entry.header)
    entry.resume()
  }
  await reading
  return headers
}

describe('packArchive', () => {
  let dir: string | undefined
  let images: GeneratedImages
  let app3: string
  let archive: string

  beforeAll(async () => {
    dir = await makeTempDir('export')
    images = await generateImages(join(dir, 'images'), { baseBytes: 4 * 1024 * 1024 })
    app3 = images.layouts.app3!
    archive = join(dir, 'app3.tar')
    await packArchive(layoutEntries(app3), createWriteStream(archive))
  })
  afterAll(async () => { await removeTempDir(dir) })

  it('writes an oci-archive skopeo inspects and copies', async () => {
    const [ref] = await readRefs(app3)
    const inspected = JSON.parse(await skopeo(['inspect', `oci-archive:${archive}`]))
    expect(inspected.Digest).toBe(ref!.digest)
    const copied = join(dir!, 'copied')
    await skopeo(['copy', '-q', `oci-archive:${archive}`, `oci:${copied}:1.0`])
    const [copiedRef] = await readRefs(copied)
    expect(copiedRef).toMatchObject({ digest: ref!.digest, refName: '1.0' })
    for (const layer of inspected.Layers as string[]) {
      expect(await sha256OfFile(join(copied, 'blobs', 'sha256', layer.slice(7)))).toBe(layer.slice(7))
    }
  })

  it('is deterministic: entries in the given order, mtime 0, owner 0, the given modes', async () => {
    const again = join(dir!, 'app3-again.tar')
    await packArchive(layoutEntries(app3), createWriteStream(again))
    expect(await sha256OfFile(again)).toBe(await sha256OfFile(archive))
    const headers = await readHeaders(archive)
    expect(headers.map(header => header.name).slice(0, 2)).toEqual(['blobs/', 'blobs/sha256/'])
    expect(headers.map(header => header.name).slice(-2)).toEqual(['index.json', 'oci-layout'])
    for (const header of headers) {
      expect([header.name, header.mtime.getTime(), header.uid, header.gid]).toEqual([header.name, 0, 0, 0])
      expect(header.mode).toBe(header.type === 'directory' ? 0o755 : 0o644)
    }
  })

  it('round-trips through extractArchive to the same tree', async () => {
    const dest = join(dir!, 'round-trip')
    await extractArchive(archive, dest)
    expect(await describeTree(dest)).toEqual(await describeTree(app3))
  })

  it('refuses an entry whose content is longer or shorter than its declared size', async () => {
    const entry = (content: string, size: number): ArchiveEntry => ({ path: 'index.json', mode: 0o644, size, open: () => Readable.from([Buffer.from(content)]) })
    const longer = await errorOf(packArchive([entry('0123456789', 4)], createWriteStream(join(dir!, 'longer.tar'))))
    expect(longer.code).toBe('ARCHIVE_ENTRY_SIZE_MISMATCH')
    const shorter = await errorOf(packArchive([entry('01', 4)], createWriteStream(join(dir!, 'shorter.tar'))))
    expect(shorter.code).toBe('ARCHIVE_ENTRY_SIZE_MISMATCH')
    expect(shorter.message).toContain('ended after 2 bytes')
  })

  it('refuses unsafe paths', async () => {
    const err = await errorOf(packArchive([{ path: '../escape', mode: 0o644, size: 0, open: () => Readable.from([]) }], createWriteStream(join(dir!, 'unsafe.tar'))))
    expect(err.code).toBe('ARCHIVE_UNSAFE_PATH')
  })

  it('reports a failing output stream', async () => {
    const err = await errorOf(packArchive(layoutEntries(app3), createWriteStream(join(dir!, 'no-such-dir', 'x.tar'))))
    expect((err as unknown as NodeJS.ErrnoException).code).toBe('ENOENT')
  })
})
