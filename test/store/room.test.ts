import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { blake3Hex } from '../../src/hash/index.js'
import { CHUNK_SIZE_BYTES } from '../../src/manifest/index.js'
import { diskFreeBytes, openStore, pushTree, type Store } from '../../src/store/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
const tempDir = useTempDirs()

/** A tmpfs of `size` mounted for `fn` (the test is skipped where mounting is not allowed), then unmounted. */
async function onTmpfs (size: string, skip: (note: string) => void, fn: (dir: string) => Promise<void>): Promise<void> {
  const mountPoint = await tempDir()
  try {
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mountPoint])
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '')
    if (/permission denied|not permitted|must be superuser|EPERM/i.test(stderr)) skip(`cannot mount a tmpfs here (${stderr.trim()}); this test needs root or CAP_SYS_ADMIN`)
    throw err
  }
  try {
    await fn(mountPoint)
  } finally {
    await execFileAsync('umount', [mountPoint])
  }
}

async function withStore (dir: string, quotaBytes: number | undefined, fn: (store: Store) => Promise<void>): Promise<void> {
  const store = await openStore({ dir, quotaBytes })
  try {
    await fn(store)
  } finally {
    await store.close()
  }
}

async function pushBytes (store: Store, bytes: Buffer): Promise<string> {
  const tree = await tempDir()
  await writeFile(join(tree, 'blob'), bytes)
  return (await pushTree(store, tree)).bundleId
}

describe('room checks (Store.createStagingFile, requireRoomFor)', () => {
  it('refuses a staging file larger than the quota before it exists (OVER_QUOTA)', async () => {
    await withStore(await tempDir(), 2 * MIB, async store => {
      await expect(store.createStagingFile('upstream', 3 * MIB, 'blob sha256:abc of app')).rejects.toMatchObject({ name: 'OverQuotaError', code: 'OVER_QUOTA' })
      expect(await readdir(store.layout.tmp)).toEqual([])
      // Within it, as before.
      const file = await store.createStagingFile('upstream', 2 * MIB, 'blob sha256:def of app')
      await file.fail(new Error('done with it'))
    })
  })

  it('makes a staging file room by the quota\'s eviction when the disk is short, as a pull does', async ({ skip }) => {
    await onTmpfs('8m', skip, async dir => {
      await withStore(join(dir, 'data'), 6 * MIB, async store => {
        const old = await pushBytes(store, randomBytes(4 * MIB))
        const free = await diskFreeBytes(store.layout.tmp)
        expect(free).toBeLessThan(5 * MIB)
        // 5 MiB does not fit beside the old bundle (4 + 5 > 6): the quota would evict it, and
        // that frees what the disk lacks.
        const file = await store.createStagingFile('upstream', 5 * MIB, 'blob sha256:abc of app')
        try {
          expect(await store.bundleIds()).not.toContain(old)
          expect(await diskFreeBytes(store.layout.tmp)).toBeGreaterThanOrEqual(5 * MIB)
        } finally {
          await file.fail(new Error('done with it'))
        }
      })
    })
  })

  it('counts a held last chunk at its own length, not a whole chunk, when it asks the disk for the rest', async ({ skip }) => {
    // An object of 3 chunks and 100 bytes, of which only the 100-byte last chunk is here: it
    // lacks 3 MiB. Counting that chunk as 1 MiB said it lacked 2 MiB + 100 bytes.
    const bytes = randomBytes(3 * MIB + 100)
    const object = blake3Hex(bytes)
    const source = await openStore({ dir: await tempDir() })
    let encoded: Uint8Array
    let bundleId: string
    try {
      bundleId = await pushBytes(source, bytes)
      encoded = await source.getEncodedBundle(bundleId) ?? new Uint8Array()
    } finally {
      await source.close()
    }
    await onTmpfs('8m', skip, async dir => {
      await withStore(join(dir, 'data'), undefined, async store => {
        await store.addBundle(encoded, { expectedId: bundleId })
        await store.writeChunk(bundleId, object, 3, bytes.subarray(3 * CHUNK_SIZE_BYTES))
        // Leave between the two counts free: 2.5 MiB.
        const free = await diskFreeBytes(store.layout.tmp)
        await writeFile(join(dir, 'filler'), Buffer.alloc(free - 2.5 * MIB))
        const left = await diskFreeBytes(store.layout.tmp)
        expect(left).toBeGreaterThan(2 * MIB + 100)
        expect(left).toBeLessThan(3 * MIB)
        await expect(store.requireRoomFor(object, bytes.length, 'the layer')).rejects.toMatchObject({ name: 'NoRoomError', neededBytes: 3 * MIB })
        // The bundle's check counts the same.
        await expect(store.requireRoomForBundle(bundleId)).rejects.toMatchObject({ name: 'NoRoomError', neededBytes: 3 * MIB })
      })
    })
  })
})

/** The description of a bundle of random files of `sizes`, made in a store of its own: a pull's bundle, none of its objects here. */
async function describedBundle (sizes: number[]): Promise<{ bundleId: string, encoded: Uint8Array }> {
  const source = await openStore({ dir: await tempDir() })
  const tree = await tempDir()
  for (const [i, size] of sizes.entries()) await writeFile(join(tree, `blob${i}`), randomBytes(size))
  try {
    const bundleId = (await pushTree(source, tree)).bundleId
    return { bundleId, encoded: await source.getEncodedBundle(bundleId) ?? new Uint8Array() }
  } finally {
    await source.close()
  }
}

describe('a pull\'s room check (Store.requireRoomForBundle)', () => {
  it('looks up what the store holds of every object of the bundle at once, not one after another', async () => {
    const sizes = [3 * MIB + 10, 2 * MIB, 5000, 700]
    const { bundleId, encoded } = await describedBundle(sizes)
    await withStore(await tempDir(), undefined, async store => {
      await store.addBundle(encoded, { expectedId: bundleId })
      const objects = (await store.loadBundle(bundleId))?.objectSizes.size ?? 0
      expect(objects).toBe(sizes.length)
      // Each look is held until every object's look has begun (or 2 s passed, the old one-by-one order).
      let begun = 0
      let most = 0
      let inFlight = 0
      let allBegun: () => void = () => {}
      const everyLook = new Promise<void>(resolve => { allBegun = resolve })
      const objectState = store.objectState.bind(store)
      store.objectState = async (hash) => {
        inFlight++
        most = Math.max(most, inFlight)
        if (++begun === objects) allBegun()
        await Promise.race([everyLook, new Promise(resolve => { setTimeout(resolve, 2000).unref() })])
        try {
          return await objectState(hash)
        } finally {
          inFlight--
        }
      }
      await store.requireRoomForBundle(bundleId)
      expect(most).toBe(objects)
    })
  })

  it('counts what every object it looked up at once lacks, not only the last to answer', async ({ skip }) => {
    const { bundleId, encoded } = await describedBundle([3 * MIB, 3 * MIB, 3 * MIB])
    await onTmpfs('8m', skip, async dir => {
      await withStore(join(dir, 'data'), undefined, async store => {
        await store.addBundle(encoded, { expectedId: bundleId })
        // 9 MiB lacking on a disk of 8 MiB, where each object's 3 MiB alone would fit. Summed as
        // `lacking += … await …`, each look added to the 0 it read before its await: 3 MiB, let through.
        await expect(store.requireRoomForBundle(bundleId)).rejects.toMatchObject({ name: 'NoRoomError', neededBytes: 9 * MIB })
      })
    })
  })
})
