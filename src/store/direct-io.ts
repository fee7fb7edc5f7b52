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

/** Whether `err` is a filesystem refusing O_DIRECT: at open, or a read or write it does not take. */
function refusesDirectIo (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'EINVAL' || code === 'EOPNOTSUPP'
}

/** A refusal of O_DIRECT after the store's probe had passed: what was refused, where. */
export interface DirectIoRefusal {
  code: string
  op: 'open' | 'read' | 'write'
  path: string
}

/**
 * Whether a store's files are opened with O_DIRECT. The probe at the store's open decides first
 * (`directIoWorks`); a refusal after it passed (EINVAL or EOPNOTSUPP from an O_DIRECT open,
 * write or read: a filesystem remounted under the store, an overlay that took the probe's file
 * but not others) turns it off for good, and `onRefused` hears of the first one only.
 */
export class DirectIoMode {
  private isOn: boolean
  private reason: string | undefined

  constructor (on: boolean, refused?: string, private readonly onRefused: (refusal: DirectIoRefusal) => void = () => {}) {
    this.isOn = on
    this.reason = refused
  }

  get on (): boolean { return this.isOn }
  /** Why it is off, when it was asked for. */
  get refused (): string | undefined { return this.reason }

  /** `err` came from an O_DIRECT `op` on `path`: whether the filesystem refused O_DIRECT (it is off from then on). */
  refusedBy (err: unknown, op: DirectIoRefusal['op'], path: string): boolean {
    if (!refusesDirectIo(err)) return false
    if (this.isOn) {
      const refusal = { code: (err as NodeJS.ErrnoException).code ?? 'EINVAL', op, path }
      this.isOn = false
      this.reason = `${refusal.code} from an O_DIRECT ${op} of ${path}, after the filesystem had taken O_DIRECT`
      this.onRefused(refusal)
    }
    return true
  }
}

/** How a direct StoreFile reopens itself through the page cache when O_DIRECT is refused after all. */
interface BufferedFallback { path: string, flags: number, mode: DirectIoMode }

/**
 * A store file opened with O_DIRECT where the filesystem allows it: chunks go from our memory
 * to the disk without a copy into the page cache (docs/architecture.md, "Chunk writes that
 * skip the page cache"). Every read and write is then whole blocks at block offsets from
 * aligned memory; bytes that are not so (the caller's buffer, an object's tail) go through one
 * of the store's aligned buffers. A file opened without O_DIRECT reads and writes as usual.
 *
 * With a `fallback`, a direct file whose filesystem refuses O_DIRECT later (or once the store's
 * mode went off because another file's did) reopens itself through the page cache and does
 * the read or write there, from the same bytes: the caller sees no error and fetches nothing
 * again. The direct handle stays open until the file closes, as reads or writes under way may
 * still be using it; fdatasync through either handle covers the file's data.
 */
export class StoreFile {
  private current: FileHandle
  private isDirect: boolean
  private readonly replaced: FileHandle[] = []
  private reopening: Promise<void> | undefined

  constructor (handle: FileHandle, direct: boolean, private readonly buffers: AlignedBuffers | undefined, private readonly fallback?: BufferedFallback) {
    if (direct && buffers === undefined) throw new RangeError('a direct store file needs aligned buffers')
    this.current = handle
    this.isDirect = direct
  }

  get direct (): boolean { return this.isDirect }

  /** The file's data to disk; whichever handle is current covers it (they are one file). */
  async datasync (): Promise<void> {
    await this.current.datasync()
  }

  async truncate (size: number): Promise<void> {
    await this.current.truncate(size)
  }

  /** The file's size on disk now. */
  async size (): Promise<number> {
    return (await this.current.stat()).size
  }

  /**
   * Writes `bytes` at `offset` (a block offset when direct). Direct, a length that is not a
   * whole number of blocks is written rounded up with zeros after it, and this resolves true:
   * the caller truncates the file to its size. `onCopied` fires once `bytes` may be reused
   * (before the write when they were copied into an aligned buffer, after it otherwise).
   */
  async write (bytes: Uint8Array, offset: number, onCopied?: () => void): Promise<boolean> {
    await this.followMode()
    if (!this.isDirect || isDirectAligned(bytes)) {
      await this.withFallback('write', async handle => { await writeFully(handle, bytes, offset) })
      onCopied?.()
      return false
    }
    const length = roundUpToBlock(bytes.byteLength)
    const bounce = this.bounce(length)
    bounce.set(bytes)
    bounce.fill(0, bytes.byteLength, length)
    onCopied?.()
    try {
      // `bytes` may be reused by now: a write through the page cache after a refusal goes from
      // the aligned copy too, and without the padding, which nobody would cut.
      return await this.withFallback('write', async (handle, direct) => {
        await writeFully(handle, bounce.subarray(0, direct ? length : bytes.byteLength), offset)
        return direct && length !== bytes.byteLength
      })
    } finally {
      this.buffers?.give(bounce)
    }
  }

  /** Reads `length` bytes at `offset` (a block offset when direct) into `into`; fewer only at the end of the file. */
  async read<T extends Uint8Array> (into: T, length: number, offset: number): Promise<T> {
    await this.followMode()
    return await this.withFallback('read', async (handle, direct) => direct ? await this.readAligned(handle, into, length, offset) : await readFully(handle, into, length, offset))
  }

  async close (): Promise<void> {
    await Promise.all([this.current, ...this.replaced].map(async handle => { await handle.close() }))
  }

  /** Whole blocks through aligned memory: `into` itself when it is aligned, else one of ours, copied out. */
  private async readAligned<T extends Uint8Array> (handle: FileHandle, into: T, length: number, offset: number): Promise<T> {
    const rounded = roundUpToBlock(length)
    if (into.byteLength >= rounded && isDirectAligned(into.subarray(0, rounded))) {
      return (await readBlocks(handle, into.subarray(0, rounded), offset)).subarray(0, length) as T
    }
    const bounce = this.bounce(rounded)
    try {
      const read = (await readBlocks(handle, bounce.subarray(0, rounded), offset)).subarray(0, length)
      into.set(read)
      return into.subarray(0, read.byteLength) as T
    } finally {
      this.buffers?.give(bounce)
    }
  }

  /**
   * Runs `io` on the handle as it is now; when that is direct and the filesystem refuses
   * O_DIRECT after all, reopens the file through the page cache and runs `io` again there.
   */
  private async withFallback<R> (op: 'read' | 'write', io: (handle: FileHandle, direct: boolean) => Promise<R>): Promise<R> {
    const handle = this.current
    const direct = this.isDirect
    try {
      return await io(handle, direct)
    } catch (err) {
      if (!direct || this.fallback?.mode.refusedBy(err, op, this.fallback.path) !== true) throw err
    }
    await this.becomeBuffered()
    return await io(this.current, false)
  }

  /** The store stopped using O_DIRECT (another file was refused it): so does this file, before its next read or write. */
  private async followMode (): Promise<void> {
    if (this.isDirect && this.fallback?.mode.on === false) await this.becomeBuffered()
  }

  private async becomeBuffered (): Promise<void> {
    const fallback = this.fallback
    if (!this.isDirect || fallback === undefined) return
    this.reopening ??= (async () => {
      const buffered = await open(fallback.path, fallback.flags, 0o600)
      this.replaced.push(this.current)
      this.current = buffered
      this.isDirect = false
    })().finally(() => { this.reopening = undefined })
    await this.reopening
  }

  private bounce (length: number): Uint8Array {
    const buffers = this.buffers as AlignedBuffers
    if (length > buffers.bufferBytes) throw new RangeError(`a direct read or write of ${length} bytes: over the aligned buffers' ${buffers.bufferBytes}`)
    return buffers.take()
  }
}

/** Whole blocks into aligned memory; a read that stops short (the end of the file, or mid-block) ends it. */
async function readBlocks (handle: FileHandle, into: Uint8Array, offset: number): Promise<Uint8Array> {
  let filled = 0
  while (filled < into.byteLength) {
    const { bytesRead } = await handle.read(into, filled, into.byteLength - filled, offset + filled)
    filled += bytesRead
    if (bytesRead === 0 || filled % DIRECT_IO_ALIGN_BYTES !== 0) break
  }
  return into.subarray(0, filled)
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
    if (refusesDirectIo(err)) return { works: false, reason: `${(err as NodeJS.ErrnoException).code}: the filesystem refuses O_DIRECT` }
    throw err
  } finally {
    await rm(path, { force: true })
  }
}

/** What a store's files need for O_DIRECT: the store's mode, and aligned memory to copy through. */
export interface DirectIo { mode: DirectIoMode, aligned: AlignedBuffers }

/**
 * Opens a store file with `flags`, and with O_DIRECT when `direct` is given and its mode is on.
 * A filesystem that refuses O_DIRECT at this open turns the mode off for good, and the file is
 * opened through the page cache instead.
 */
export async function openStoreFile (path: string, flags: number, direct: DirectIo | undefined): Promise<StoreFile> {
  if (direct?.mode.on === true) {
    try {
      return new StoreFile(await open(path, flags | constants.O_DIRECT, 0o600), true, direct.aligned, { path, flags, mode: direct.mode })
    } catch (err) {
      if (!direct.mode.refusedBy(err, 'open', path)) throw err
    }
  }
  return new StoreFile(await open(path, flags, 0o600), false, direct?.aligned)
}
