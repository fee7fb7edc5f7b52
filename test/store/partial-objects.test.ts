import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { blake3Hex } from '../../src/hash/index.js'
import { ChunkBitmap, CHUNK_SIZE_BYTES } from '../../src/manifest/index.js'
import { StoreLayout } from '../../src/store/layout.js'
import { Metadata } from '../../src/store/metadata.js'
import { PartialObjects } from '../../src/store/partial-objects.js'
import { openFilesUnder } from '../helpers/open-files.js'
import { useTempDirs } from '../helpers/temp-dir.js'

describe('PartialObjects: open partial files', () => {
  const tempDir = useTempDirs()
  const metas: Metadata[] = []
  // Registered after useTempDirs, so it runs first: LevelDB closes before its directory goes.
  afterEach(async () => {
    for (const meta of metas.splice(0)) await meta.close()
  })

  async function partialsIn (dir: string): Promise<{ partials: PartialObjects, layout: StoreLayout, meta: Metadata }> {
    const layout = new StoreLayout(dir)
    for (const d of [layout.objects, layout.partial, layout.db]) await mkdir(d, { recursive: true })
    const meta = await Metadata.open(layout.db)
    metas.push(meta)
    return { partials: new PartialObjects({ layout, meta, emit: () => {} }), layout, meta }
  }

  it('a close while a write is opening its file waits for that write, keeps its chunk, and leaves no handle open', async () => {
    const { partials, layout, meta } = await partialsIn(await tempDir())
    const size = 2 * CHUNK_SIZE_BYTES + 10
    const object = randomBytes(size)
    const hash = blake3Hex(object)
    // The write's first step opens the partial file; close() is called before that open ends.
    const write = partials.write(hash, size, 0, object.subarray(0, CHUNK_SIZE_BYTES))
    const outcome = write.then(result => result, (err: unknown) => err)
    await partials.close()
    expect(await outcome).toEqual({ stored: true, objectComplete: false })
    expect(await openFilesUnder([layout.partial])).toEqual([])
    const record = await meta.getPartial(hash)
    expect(record === undefined ? undefined : new ChunkBitmap(3, record.bitmap).missing()).toEqual([1, 2])
  })

  it('refuses a write that starts after close with STORE_CLOSING, and opens nothing for it', async () => {
    const { partials, layout, meta } = await partialsIn(await tempDir())
    const size = 2 * CHUNK_SIZE_BYTES + 10
    const object = randomBytes(size)
    const hash = blake3Hex(object)
    await partials.close()
    await expect(partials.write(hash, size, 1, object.subarray(CHUNK_SIZE_BYTES, 2 * CHUNK_SIZE_BYTES))).rejects.toMatchObject({ name: 'StoreClosingError', code: 'STORE_CLOSING' })
    expect(await openFilesUnder([layout.partial])).toEqual([])
    expect(await meta.getPartial(hash)).toBeUndefined()
  })
})
