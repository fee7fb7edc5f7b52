import { createHash, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CHUNK_SIZE_BYTES } from '../../src/manifest/index.js'
import { BlobHasher } from '../../src/store/blob-hasher.js'
import { ingestFile } from '../../src/store/ingest.js'
import { b3sumOfBytes } from '../helpers/independent-hashes.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = CHUNK_SIZE_BYTES

/** `bytes` cut into pieces of the given sizes (cycled), as a network delivers a blob. */
function pieces (bytes: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0, i = 0; at < bytes.byteLength; i++) {
    const size = Math.max(1, sizes[i % sizes.length] ?? 1)
    out.push(bytes.subarray(at, at + size))
    at += size
  }
  return out
}

describe('BlobHasher (one pass over a blob as it is written)', () => {
  const tempDir = useTempDirs()

  it('gives what a read of the whole file gives, however the blob is cut', async () => {
    const dir = await tempDir()
    const sizes = [0, 1, MIB - 1, MIB, MIB + 1, 3 * MIB + 12_345]
    for (const size of sizes) {
      const bytes = randomBytes(size)
      const path = join(dir, `blob-${size}`)
      await writeFile(path, bytes)
      const read = await ingestFile(path, { sha256: true })
      // Pieces as small as a byte, as large as the blob, and across chunk boundaries every way.
      for (const cut of [[size + 1], [1, 65_535], [65_536], [65_519, 7, 1_000_000], [MIB], [MIB - 1, 2]]) {
        const hasher = new BlobHasher()
        for (const piece of pieces(bytes, cut)) hasher.update(piece)
        const hashed = hasher.digest()
        expect({ ...hashed }, `size ${size}, pieces ${cut.join(',')}`).toEqual({ checksum: read.checksum, size: read.size, sha256: read.sha256, ...(read.chunkHashes === undefined ? {} : { chunkHashes: read.chunkHashes }) })
      }
    }
  })

  it('names a blob as b3sum and sha256 do, and each chunk as b3sum does', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: 2 * MIB + 100 }), fc.array(fc.integer({ min: 1, max: 300_000 }), { minLength: 1, maxLength: 5 }), async (size, cut) => {
      const bytes = randomBytes(size)
      const hasher = new BlobHasher()
      for (const piece of pieces(bytes, cut)) hasher.update(piece)
      const hashed = hasher.digest()
      expect(hashed.checksum).toBe(await b3sumOfBytes(bytes))
      expect(hashed.sha256).toBe(createHash('sha256').update(bytes).digest('hex'))
      expect(hashed.size).toBe(size)
      if (size <= MIB) {
        expect(hashed.chunkHashes).toBeUndefined()
        return
      }
      const chunks = Math.ceil(size / MIB)
      expect(hashed.chunkHashes).toHaveLength(chunks)
      expect(hashed.chunkHashes?.at(-1)).toBe(await b3sumOfBytes(bytes.subarray((chunks - 1) * MIB)))
    }), { numRuns: 8 })
  })

  it('takes nothing after its digest', () => {
    const hasher = new BlobHasher()
    hasher.update(Buffer.from('abc'))
    const first = hasher.digest()
    expect(hasher.digest()).toBe(first)
    expect(() => { hasher.update(Buffer.from('d')) }).toThrow()
  })
})
