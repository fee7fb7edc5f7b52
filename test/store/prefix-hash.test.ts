import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { blake3Hex } from '../../src/hash/index.js'
import { bundleObjects } from '../../src/manifest/index.js'
import { openStore, pushTree, type Store } from '../../src/store/index.js'
import { PREFIX_HOLD_CHUNKS } from '../../src/store/constants.js'
import { ChunkBytesUsers, EarlyChunkBudget, PrefixHash } from '../../src/store/prefix-hash.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024

/** A chunk's users with the write's own hold; `released` says whether its buffer was given back. */
function chunkUsers (): { users: ChunkBytesUsers, released: () => boolean } {
  let released = false
  const users = new ChunkBytesUsers(() => { released = true })
  return { users, released: () => released }
}

describe('prefix hash: early chunks held within a budget', () => {
  it('holds a chunk a little ahead until its predecessor comes, then hashes both in order', () => {
    const budget = new EarlyChunkBudget(4, 4)
    const prefix = new PrefixHash(budget)
    const chunks = [randomBytes(1000), randomBytes(1000), randomBytes(1000)]
    const second = chunkUsers()
    prefix.add(1, chunks[1]!, second.users)
    second.users.drop() // its write is done; the prefix still holds it
    expect(second.released()).toBe(false)
    expect(budget.heldChunks).toBe(1)
    const first = chunkUsers()
    prefix.add(0, chunks[0]!, first.users)
    first.users.drop()
    expect(second.released()).toBe(true)
    expect(first.released()).toBe(true)
    expect(budget.heldChunks).toBe(0)
    expect(prefix.chunks).toBe(2)
    expect(prefix.state?.digestHex()).toBe(blake3Hex(Buffer.concat([chunks[0]!, chunks[1]!])))
  })

  it('does not hold a chunk further ahead than the reach: its buffer goes back with its write', () => {
    const budget = new EarlyChunkBudget(4, 2)
    const prefix = new PrefixHash(budget)
    const far = chunkUsers()
    prefix.add(3, randomBytes(10), far.users)
    far.users.drop()
    expect(far.released()).toBe(true)
    expect(budget.heldChunks).toBe(0)
    // The gap at 1..3 is never filled from memory: the prefix stops at chunk 0.
    prefix.add(0, randomBytes(10), chunkUsers().users)
    prefix.add(2, randomBytes(10), chunkUsers().users)
    prefix.settled(2)
    prefix.add(3, randomBytes(10), chunkUsers().users)
    expect(prefix.chunks).toBe(1)
  })

  it('holds at most `max` chunks across every object of the store, and makes room as they settle', () => {
    const budget = new EarlyChunkBudget(2, 8)
    const a = new PrefixHash(budget)
    const b = new PrefixHash(budget)
    const held = [chunkUsers(), chunkUsers(), chunkUsers()]
    a.add(1, randomBytes(10), held[0]!.users)
    b.add(1, randomBytes(10), held[1]!.users)
    b.add(2, randomBytes(10), held[2]!.users)
    for (const chunk of held) chunk.users.drop()
    expect(held.map(c => c.released())).toEqual([false, false, true])
    expect(budget.heldChunks).toBe(2)
    // a's chunk 1 committed before chunk 0 came: let go, and b may hold another.
    a.settled(1)
    expect(held[0]!.released()).toBe(true)
    const again = chunkUsers()
    b.add(3, randomBytes(10), again.users)
    again.users.drop()
    expect(again.released()).toBe(false)
    b.clear()
    expect(held[1]!.released()).toBe(true)
    expect(again.released()).toBe(true)
    expect(budget.heldChunks).toBe(0)
  })
})

describe('store: receive buffers of early chunks', () => {
  const tempDir = useTempDirs()
  const opened: Store[] = []
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close()
  })

  it('gives a chunk far ahead of its object\'s prefix back once written, before its commit; one just ahead is held until its commit', async () => {
    const tree = await tempDir()
    const chunkCount = PREFIX_HOLD_CHUNKS + 3
    const bytes = randomBytes(chunkCount * MIB)
    await writeFile(join(tree, 'big.bin'), bytes)
    const seed = await openStore({ dir: await tempDir() })
    opened.push(seed)
    const { bundleId } = await pushTree(seed, tree)
    const encoded = (await seed.getEncodedBundle(bundleId))!
    const store = await openStore({ dir: await tempDir() })
    opened.push(store)
    const { bundle } = await store.addBundle(encoded, { expectedId: bundleId })
    const object = bundleObjects(bundle).find(o => o.size === bytes.length)!
    const chunk = (index: number): Buffer => bytes.subarray(index * MIB, (index + 1) * MIB)

    // In the order of events: the buffer given back (onWritten), the chunk recorded (commit).
    const events: string[] = []
    store.on('chunk:stored', ({ index }) => { events.push(`stored ${index}`) })
    const write = async (index: number): Promise<void> => {
      await store.writeChunk(bundleId, object.hash, index, chunk(index), { onWritten: () => { events.push(`written ${index}`) } })
    }
    const far = PREFIX_HOLD_CHUNKS + 1
    await write(far)
    await write(1)
    expect(events).toEqual([`written ${far}`, `stored ${far}`, 'stored 1', 'written 1'])

    // The object still completes and hashes right; chunk 0 restarts the prefix, the rest is read back.
    for (let index = 0; index < chunkCount; index++) if (index !== far && index !== 1) await write(index)
    expect(await store.objectState(object.hash)).toEqual({ state: 'complete' })
  })
})
