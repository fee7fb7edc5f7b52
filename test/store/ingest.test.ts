import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CHUNK_SIZE_BYTES } from '../../src/manifest/index.js'
import { ingestFile } from '../../src/store/ingest.js'
import { b3sumOfBytes, b3sumOfFile } from '../helpers/independent-hashes.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024

describe('ingestFile (one read: BLAKE3 whole and per chunk, sha256, copy)', () => {
  const tempDir = useTempDirs()

  // Chunk boundaries and the read-ahead of the next chunk meet at these sizes.
  for (const size of [0, 1, MIB - 1, MIB, MIB + 1, 2 * MIB, 3 * MIB + 5]) {
    it(`gives b3sum's and sha256's digests and an exact copy for ${size} bytes`, async () => {
      const dir = await tempDir()
      const bytes = randomBytes(size)
      await writeFile(join(dir, 'in'), bytes)
      const result = await ingestFile(join(dir, 'in'), { copyTo: join(dir, 'out'), sha256: true })

      expect(result.size).toBe(size)
      expect(result.checksum).toBe(await b3sumOfFile(join(dir, 'in')))
      expect(result.sha256).toBe(createHash('sha256').update(bytes).digest('hex'))
      expect(result.stagedPath).toBe(join(dir, 'out'))
      expect((await readFile(join(dir, 'out'))).equals(bytes)).toBe(true)
      if (size <= CHUNK_SIZE_BYTES) {
        expect(result.chunkHashes).toBeUndefined()
      } else {
        const expected: string[] = []
        for (let offset = 0; offset < size; offset += CHUNK_SIZE_BYTES) expected.push(await b3sumOfBytes(bytes.subarray(offset, offset + CHUNK_SIZE_BYTES)))
        expect(result.chunkHashes).toEqual(expected)
      }
    })
  }

  it('hashes without copying when there is no copyTo', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'in'), randomBytes(MIB + 7))
    const result = await ingestFile(join(dir, 'in'))
    expect(result).toMatchObject({ checksum: await b3sumOfFile(join(dir, 'in')), size: MIB + 7, stagedPath: join(dir, 'in') })
    expect(result.sha256).toBeUndefined()
  })

  it('stops when aborted, with the signal\'s reason', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'in'), randomBytes(4 * MIB))
    const controller = new AbortController()
    controller.abort(new Error('stop here'))
    await expect(ingestFile(join(dir, 'in'), { copyTo: join(dir, 'out'), signal: controller.signal })).rejects.toThrow('stop here')
  })
})
