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
 * so that completing the object reads back only what the prefix has not reached.
 *
 * Chunks arrive in order from a single holder and for an object a client waits on (the swarm
 * fetches those first, in order), but their writes may overtake each other on the way to the
 * store; so a chunk that comes early is held (by reference, not copied) until the one before
 * it arrives or its own write has committed, whichever is first. What is held is therefore
 * bounded by the writes under way, which the swarm already bounds. A chunk that was stored
 * before the prefix reached it (fetched at random before a client asked for the object, or in
 * an earlier run) is read back from the file when the prefix gets there (`catchUp`), once,
 * while the rest still comes from memory. In a random order most chunks are read back once, as
 * completion always did.
 */
export class PrefixHash {
  private hasher: Blake3Hasher | undefined
  private next = 0
  private readonly early = new Map<number, { bytes: Uint8Array, users: ChunkBytesUsers }>()
  private running: Promise<void> | undefined
  /** Bytes read back from the file by `catchUp`. */
  readBytes = 0

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
    if (index === this.next && this.running === undefined) {
      this.feed(bytes)
      this.feedEarly()
    } else if (index >= this.next && !this.early.has(index)) {
      // While a catch-up reads, even the next chunk waits: the catch-up feeds it in turn.
      users.hold()
      this.early.set(index, { bytes, users })
    }
  }

  /** The chunk's write has committed (or failed): if it is still held, it is let go. */
  settled (index: number): void {
    const held = this.early.get(index)
    if (held === undefined) return
    this.early.delete(index)
    held.users.drop()
  }

  /**
   * Reads back, in order, the chunks already in the file where the prefix stands (stored
   * before it got there), until one is not; undefined when there is nothing to read or a
   * catch-up is already running. `read` gives a durable chunk's bytes.
   */
  catchUp (chunkCount: number, isDurable: (index: number) => boolean, read: (index: number) => Promise<Uint8Array>): Promise<void> | undefined {
    if (this.running !== undefined || this.next >= chunkCount || !isDurable(this.next)) return undefined
    this.running = (async () => {
      try {
        for (;;) {
          this.feedEarly()
          if (this.next >= chunkCount || !isDurable(this.next)) return
          const bytes = await read(this.next)
          this.readBytes += bytes.byteLength
          this.feed(bytes)
        }
      } finally {
        this.running = undefined
      }
    })()
    return this.running
  }

  /** Resolves when no catch-up is running (whatever its outcome). */
  async settledCatchUp (): Promise<void> {
    await this.running?.catch(() => {})
  }

  /** Lets go of everything held (the prefix is being dropped). */
  clear (): void {
    for (const held of this.early.values()) held.users.drop()
    this.early.clear()
  }

  private feedEarly (): void {
    for (let held = this.early.get(this.next); held !== undefined; held = this.early.get(this.next)) {
      this.early.delete(this.next)
      this.feed(held.bytes)
      held.users.drop()
    }
  }

  private feed (bytes: Uint8Array): void {
    this.hasher ??= createBlake3()
    this.hasher.update(bytes)
    this.next++
  }
}
