import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { CHUNK_SIZE_BYTES } from '../../src/manifest/index.js'
import { HASH_WORKER_SLOTS, HashWorker } from '../../src/store/hash-worker.js'
import { ingestFile } from '../../src/store/ingest.js'
import { b3sumOfBytes, b3sumOfFile } from '../helpers/independent-hashes.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024

async function expectedChunkHashes (bytes: Buffer): Promise<string[] | undefined> {
  if (bytes.length <= CHUNK_SIZE_BYTES) return undefined
  const hashes: string[] = []
  for (let offset = 0; offset < bytes.length; offset += CHUNK_SIZE_BYTES) hashes.push(await b3sumOfBytes(bytes.subarray(offset, offset + CHUNK_SIZE_BYTES)))
  return hashes
}

describe('ingestFile with a hashing thread (sha256 beside BLAKE3, shared chunk buffers)', () => {
  const tempDir = useTempDirs()
  const workers: HashWorker[] = []
  afterEach(async () => {
    for (const worker of workers.splice(0)) await worker.close()
  })
  const newWorker = (): HashWorker => {
    const worker = new HashWorker()
    workers.push(worker)
    return worker
  }

  // One read, one chunk, the read ahead meeting the end, and more chunks than the thread has buffers.
  for (const size of [0, 1, MIB - 1, MIB, MIB + 1, 2 * MIB, 3 * MIB + 5, (HASH_WORKER_SLOTS + 3) * MIB + 7]) {
    it(`gives b3sum's and sha256's digests, the chunk table and an exact copy for ${size} bytes, and gives every buffer back`, async () => {
      const dir = await tempDir()
      const bytes = randomBytes(size)
      await writeFile(join(dir, 'in'), bytes)
      const hashWorker = newWorker()
      const result = await ingestFile(join(dir, 'in'), { copyTo: join(dir, 'out'), sha256: true, hashWorker })

      expect(result.size).toBe(size)
      expect(result.checksum).toBe(await b3sumOfFile(join(dir, 'in')))
      expect(result.sha256).toBe(createHash('sha256').update(bytes).digest('hex'))
      expect(result.chunkHashes).toEqual(await expectedChunkHashes(bytes))
      expect((await readFile(join(dir, 'out'))).equals(bytes)).toBe(true)
      expect(hashWorker.slots.idle).toBe(HASH_WORKER_SLOTS)
    })
  }

  it('hashes several files at once on one thread, each to its own digests', async () => {
    const dir = await tempDir()
    const hashWorker = newWorker()
    const inputs = await Promise.all(Array.from({ length: 6 }, async (_, i) => {
      const bytes = randomBytes(5 * MIB + 1000 * i)
      await writeFile(join(dir, `in-${i}`), bytes)
      return bytes
    }))
    const results = await Promise.all(inputs.map(async (_, i) => await ingestFile(join(dir, `in-${i}`), { copyTo: join(dir, `out-${i}`), sha256: true, hashWorker })))
    for (const [i, bytes] of inputs.entries()) {
      expect(results[i]?.sha256).toBe(createHash('sha256').update(bytes).digest('hex'))
      expect(results[i]?.checksum).toBe(await b3sumOfBytes(bytes))
      expect(results[i]?.chunkHashes).toEqual(await expectedChunkHashes(bytes))
      expect((await readFile(join(dir, `out-${i}`))).equals(bytes)).toBe(true)
    }
    expect(hashWorker.slots.idle).toBe(HASH_WORKER_SLOTS)
  })

  it('without sha256, or without a copy, still gives BLAKE3 and the chunk table', async () => {
    const dir = await tempDir()
    const bytes = randomBytes(3 * MIB + 11)
    await writeFile(join(dir, 'in'), bytes)
    const hashWorker = newWorker()
    const copied = await ingestFile(join(dir, 'in'), { copyTo: join(dir, 'out'), hashWorker })
    const read = await ingestFile(join(dir, 'in'), { sha256: true, hashWorker })
    expect(copied.sha256).toBeUndefined()
    expect(copied.checksum).toBe(await b3sumOfBytes(bytes))
    expect(read).toMatchObject({ checksum: copied.checksum, chunkHashes: copied.chunkHashes, sha256: createHash('sha256').update(bytes).digest('hex'), stagedPath: join(dir, 'in') })
  })

  it('stops when aborted mid-file, with the signal\'s reason, gives every buffer back and leaves the thread usable', async () => {
    const dir = await tempDir()
    const bytes = randomBytes(32 * MIB)
    await writeFile(join(dir, 'in'), bytes)
    const hashWorker = newWorker()
    const controller = new AbortController()
    const ingesting = ingestFile(join(dir, 'in'), { copyTo: join(dir, 'out'), sha256: true, hashWorker, signal: controller.signal })
    setImmediate(() => { controller.abort(new Error('stop here')) })
    await expect(ingesting).rejects.toThrow('stop here')
    expect(hashWorker.slots.idle).toBe(HASH_WORKER_SLOTS)

    const again = await ingestFile(join(dir, 'in'), { copyTo: join(dir, 'again'), sha256: true, hashWorker })
    expect(again.sha256).toBe(createHash('sha256').update(bytes).digest('hex'))
  })

  it('fails, and gives every buffer back, when the thread goes away mid-file', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'in'), randomBytes(32 * MIB))
    const hashWorker = newWorker()
    const ingesting = ingestFile(join(dir, 'in'), { copyTo: join(dir, 'out'), sha256: true, hashWorker })
    // Once the first chunk was handed to the thread.
    while (hashWorker.slots.idle === HASH_WORKER_SLOTS) await new Promise(resolve => setImmediate(resolve))
    await hashWorker.close()
    await expect(ingesting).rejects.toThrow(/hashing thread/)
    expect(hashWorker.slots.idle).toBe(HASH_WORKER_SLOTS)
  })

  it('turns a full disk into DiskFullError and gives every buffer back', async ({ skip }) => {
    const mountPoint = await tempDir()
    try {
      await execFileAsync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint])
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? '')
      if (/permission denied|not permitted|must be superuser|EPERM/i.test(stderr)) skip(`cannot mount a tmpfs here (${stderr.trim()}); this test needs root or CAP_SYS_ADMIN`)
      throw err
    }
    try {
      const dir = await tempDir()
      await writeFile(join(dir, 'in'), randomBytes(16 * MIB))
      const hashWorker = newWorker()
      await expect(ingestFile(join(dir, 'in'), { copyTo: join(mountPoint, 'out'), sha256: true, hashWorker })).rejects.toMatchObject({ name: 'DiskFullError', code: 'DISK_FULL' })
      expect(hashWorker.slots.idle).toBe(HASH_WORKER_SLOTS)
    } finally {
      await execFileAsync('umount', [mountPoint])
    }
  })
})
