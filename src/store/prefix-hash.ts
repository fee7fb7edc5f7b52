import { createBlake3, type Blake3Hasher } from '../hash/index.js'

/**
 * Who still reads a chunk's bytes: its write, and maybe the prefix hash waiting for the chunk
 * before it. The caller's buffer is given back (`release`) when the last one is done.
 */
export class ChunkBytesUsers {
  private users = 1

  constructor (private readonly release?: () => void) {}

  hold (): void {
    this.users++
  }

  drop (): void {
    if (--this.users === 0) this.release?.()
  }
}

/**
 * The BLAKE3 of an object's chunks [0, chunks), fed from memory as verified chunks come in,
 * so that completing the object reads back only what came after the first gap.
 *
 * Chunks arrive in order from a single holder and for an object a client waits on (the swarm
 * fetches those first, in order), but their writes may overtake each other on the way to the
 * store; so a chunk that comes early is held (by reference, not copied) until the one before
 * it arrives or its own write has committed, whichever is first. A held chunk keeps its receive
 * buffer from the pool, so holding is bounded (EarlyChunkBudget): only a chunk at most `reach`
 * ahead of the prefix, and only while the store holds fewer than `max`. In a random order (the
 * swarm's rarest-first, several objects at once) nearly every chunk is early and the gap rarely
 * fills before its commit: holding them all kept 10-25 more receive buffers alive in
 * bench-transfer (docs/architecture.md). Such a chunk is let go at once, the prefix stops at its
 * gap, and completion reads the rest from the file, as it always did.
 */
export class PrefixHash {
  private hasher: Blake3Hasher | undefined
  private next = 0
  private readonly early = new Map<number, { bytes: Uint8Array, users: ChunkBytesUsers }>()

  constructor (private readonly budget: EarlyChunkBudget) {}

  /** Chunks [0, chunks) are in the hash. */
  get chunks (): number {
    return this.next
  }

  /** The hash so far, to continue from the file at `chunks`; undefined when nothing is in it. */
  get state (): Blake3Hasher | undefined {
    return this.hasher
  }

  /** A verified chunk on its way to the file: hashed now, held for later, or ignored. */
  add (index: number, bytes: Uint8Array, users: ChunkBytesUsers): void {
    if (index === this.next) {
      this.feed(bytes)
      for (let held = this.early.get(this.next); held !== undefined; held = this.early.get(this.next)) {
        this.early.delete(this.next)
        this.feed(held.bytes)
        this.letGo(held.users)
      }
    } else if (index > this.next && index - this.next <= this.budget.reach && !this.early.has(index) && this.budget.take()) {
      users.hold()
      this.early.set(index, { bytes, users })
    }
  }

  /** The chunk's write has committed (or failed): if it is still held, it is let go. */
  settled (index: number): void {
    const held = this.early.get(index)
    if (held === undefined) return
    this.early.delete(index)
    this.letGo(held.users)
  }

  /** Lets go of everything held (the prefix is being dropped). */
  clear (): void {
    for (const held of this.early.values()) this.letGo(held.users)
    this.early.clear()
  }

  private letGo (users: ChunkBytesUsers): void {
    this.budget.give()
    users.drop()
  }

  private feed (bytes: Uint8Array): void {
    this.hasher ??= createBlake3()
    this.hasher.update(bytes)
    this.next++
  }
}

/**
 * The early chunks the prefix hashes of one store may hold together (`max`), and how far ahead
 * of its object's prefix a chunk may be to be held at all (`reach`).
 */
export class EarlyChunkBudget {
  private held = 0

  constructor (readonly max: number, readonly reach: number) {}

  /** Counts one more held chunk, or says no when `max` are held. */
  take (): boolean {
    if (this.held >= this.max) return false
    this.held++
    return true
  }

  give (): void {
    this.held--
  }

  get heldChunks (): number {
    return this.held
  }
}
