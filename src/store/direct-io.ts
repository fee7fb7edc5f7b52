import { constants } from 'node:fs'
import { open, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { DIRECT_IO_ALIGN_BYTES } from './constants.js'
import { readFully, writeFully } from './object-files.js'

/** The part of the WebAssembly JS API used here: neither ES2023's lib nor @types/node 20 declares it as a value. */
interface WasmMemoryConstructor { new (descriptor: { initial: number, maximum?: number }): { readonly buffer: ArrayBuffer } }
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: WasmMemoryConstructor } }).WebAssembly.Memory

/** A WebAssembly page: what a WebAssembly.Memory is sized in. */
const WASM_PAGE_BYTES = 64 * 1024

/** Memory handed out by an AlignedBuffers: its base is page-aligned (see there). */
const alignedMemory = new WeakSet<ArrayBufferLike>()

/** `bytes` may be written or read with O_DIRECT as they are: page-aligned memory, a whole number of blocks. */
export function isDirectAligned (bytes: Uint8Array): boolean {
  return alignedMemory.has(bytes.buffer) && bytes.byteOffset % DIRECT_IO_ALIGN_BYTES === 0 && bytes.byteLength % DIRECT_IO_ALIGN_BYTES === 0
}

export function roundUpToBlock (bytes: number): number {
  return Math.ceil(bytes / DIRECT_IO_ALIGN_BYTES) * DIRECT_IO_ALIGN_BYTES
}

/**
 * Page-aligned buffers for O_DIRECT, which needs the buffer's address to be a multiple of the
 * disk's logical block size, besides the offset and the length. Node has no aligned allocation:
 * an ArrayBuffer the size of a chunk comes from malloc's own mmap, 16 bytes past a page. V8
 * maps a WebAssembly.Memory's backing store by itself, at a page boundary, so buffers are
 * carved out of a few such memories (slabs of `perSlab` buffers, made as needed and kept: a
 * memory cannot shrink, and the buffers in use at once are bounded by the store's callers).
 */
export class AlignedBuffers {
  private readonly free: Uint8Array[] = []
  private slabs = 0

  constructor (readonly bufferBytes: number, private readonly perSlab: number) {
    if (bufferBytes % DIRECT_IO_ALIGN_BYTES !== 0) throw new RangeError(`aligned buffers of ${bufferBytes} bytes: not a whole number of ${DIRECT_IO_ALIGN_BYTES}-byte blocks`)
  }

  /** Slabs made so far (each `perSlab` buffers). */
  get slabCount (): number { return this.slabs }

  take (): Uint8Array {
    const free = this.free.pop()
    if (free !== undefined) return free
    const pages = Math.ceil(this.bufferBytes * this.perSlab / WASM_PAGE_BYTES)
    const memory = new WasmMemory({ initial: pages, maximum: pages })
    alignedMemory.add(memory.buffer)
    this.slabs++
    for (let i = 1; i < this.perSlab; i++) this.free.push(new Uint8Array(memory.buffer, i * this.bufferBytes, this.bufferBytes))
    return new Uint8Array(memory.buffer, 0, this.bufferBytes)
  }

  give (buffer: Uint8Array): void {
    this.free.push(buffer)
  }
}

/**
 * A store file opened with O_DIRECT where the filesystem allows it: chunks go from our memory
 * to the disk without a copy into the page cache (docs/architecture.md, "Chunk writes that
 * skip the page cache"). Every read and write is then whole blocks at block offsets from
 * aligned memory; bytes that are not so (the caller's buffer, an object's tail) go through one
 * of the store's aligned buffers. A file opened without O_DIRECT reads and writes as usual.
 */
export class StoreFile {
  constructor (readonly handle: FileHandle, readonly direct: boolean, private readonly buffers: AlignedBuffers | undefined) {
    if (direct && buffers === undefined) throw new RangeError('a direct store file needs aligned buffers')
  }

  /**
   * Writes `bytes` at `offset` (a block offset when direct). Direct, a length that is not a
   * whole number of blocks is written rounded up with zeros after it: the caller truncates the
   * file to its size. `onCopied` fires once `bytes` may be reused (before the write when they
   * were copied into an aligned buffer, after it otherwise).
   */
  async write (bytes: Uint8Array, offset: number, onCopied?: () => void): Promise<void> {
    if (!this.direct || isDirectAligned(bytes)) {
      await writeFully(this.handle, bytes, offset)
      onCopied?.()
      return
    }
    const length = roundUpToBlock(bytes.byteLength)
    const bounce = this.bounce(length)
    bounce.set(bytes)
    bounce.fill(0, bytes.byteLength, length)
    onCopied?.()
    try {
      await writeFully(this.handle, bounce.subarray(0, length), offset)
    } finally {
      this.buffers?.give(bounce)
    }
  }

  /** Reads `length` bytes at `offset` (a block offset when direct) into `into`; fewer only at the end of the file. */
  async read<T extends Uint8Array> (into: T, length: number, offset: number): Promise<T> {
    if (!this.direct) return await readFully(this.handle, into, length, offset)
    const rounded = roundUpToBlock(length)
    if (into.byteLength >= rounded && isDirectAligned(into.subarray(0, rounded))) {
      return (await this.readDirect(into.subarray(0, rounded), offset)).subarray(0, length) as T
    }
    const bounce = this.bounce(rounded)
    try {
      const read = (await this.readDirect(bounce.subarray(0, rounded), offset)).subarray(0, length)
      into.set(read)
      return into.subarray(0, read.byteLength) as T
    } finally {
      this.buffers?.give(bounce)
    }
  }

  async close (): Promise<void> {
    await this.handle.close()
  }

  /** Whole blocks into aligned memory; a read that stops short (the end of the file, or mid-block) ends it. */
  private async readDirect (into: Uint8Array, offset: number): Promise<Uint8Array> {
    let filled = 0
    while (filled < into.byteLength) {
      const { bytesRead } = await this.handle.read(into, filled, into.byteLength - filled, offset + filled)
      filled += bytesRead
      if (bytesRead === 0 || filled % DIRECT_IO_ALIGN_BYTES !== 0) break
    }
    return into.subarray(0, filled)
  }

  private bounce (length: number): Uint8Array {
    const buffers = this.buffers as AlignedBuffers
    if (length > buffers.bufferBytes) throw new RangeError(`a direct read or write of ${length} bytes: over the aligned buffers' ${buffers.bufferBytes}`)
    return buffers.take()
  }
}

/**
 * Whether `dir`'s filesystem takes O_DIRECT: a file is opened with it there, one aligned block
 * written and read back, and the file removed. Some refuse it at open with EINVAL (ramfs, FUSE
 * mounts without direct_io); tmpfs takes it since Linux 6.6. The block is written too, so a
 * disk whose logical blocks are larger than DIRECT_IO_ALIGN_BYTES is found here, not by a
 * pull's first chunk.
 */
export async function directIoWorks (dir: string): Promise<{ works: true } | { works: false, reason: string }> {
  const path = join(dir, `direct-io-probe-${process.pid}`)
  try {
    const file = new StoreFile(await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_DIRECT, 0o600), true, new AlignedBuffers(DIRECT_IO_ALIGN_BYTES, 1))
    try {
      const block = new Uint8Array(DIRECT_IO_ALIGN_BYTES).fill(0x5a)
      await file.write(block, 0)
      await file.read(new Uint8Array(DIRECT_IO_ALIGN_BYTES), DIRECT_IO_ALIGN_BYTES, 0)
    } finally {
      await file.close()
    }
    return { works: true }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EINVAL' || code === 'EOPNOTSUPP') return { works: false, reason: `${code}: the filesystem refuses O_DIRECT` }
    throw err
  } finally {
    await rm(path, { force: true })
  }
}

/** Opens a store file for reading and writing, with O_DIRECT when `direct`. */
export async function openStoreFile (path: string, direct: boolean, buffers: AlignedBuffers): Promise<StoreFile> {
  const flags = constants.O_RDWR | constants.O_CREAT | (direct ? constants.O_DIRECT : 0)
  return new StoreFile(await open(path, flags, 0o600), direct, buffers)
}
