import { constants } from 'node:fs'
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { createBlake3, type Blake3Hasher } from '../hash/index.js'
import { INGEST_BUFFER_BYTES } from './constants.js'
import { translateWriteError } from './errors.js'

export async function fileExists (path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/** A file's size; undefined when it is absent. */
export async function fileSize (path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** A small file's bytes; undefined when it is absent or over `maxBytes` (then it is not read). */
export async function readSmallFile (path: string, maxBytes: number): Promise<Buffer | undefined> {
  let file
  try {
    file = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    if ((await file.stat()).size > maxBytes) return undefined
    return await file.readFile()
  } finally {
    await file.close()
  }
}

/**
 * Moves a verified file to its place in objects/. The rename is the moment an object
 * becomes visible, so it happens only after every byte was hashed.
 */
export async function publishObject (stagedPath: string, objectPath: string): Promise<void> {
  await mkdir(dirname(objectPath), { recursive: true })
  await rename(stagedPath, objectPath)
}

/** Writes bytes at an offset of a file, durably, creating the file if needed. */
export async function writeAt (path: string, offset: number, bytes: Uint8Array, options: { fsync: boolean }): Promise<void> {
  const file = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600)
  try {
    await writeFully(file, bytes, offset)
    if (options.fsync) await file.datasync()
  } catch (err) {
    throw translateWriteError(err, path)
  } finally {
    await file.close()
  }
}

/** Writes all of `bytes` at `offset` (a positional write may write less than asked). */
export async function writeFully (file: FileHandle, bytes: Uint8Array, offset: number): Promise<void> {
  let written = 0
  while (written < bytes.length) {
    const { bytesWritten } = await file.write(bytes, written, bytes.length - written, offset + written)
    written += bytesWritten
  }
}

/** Reads `length` bytes at `offset`; fewer only if the file is shorter. */
export async function readAt (path: string, offset: number, length: number): Promise<Buffer> {
  const file = await open(path, 'r')
  try {
    return await readFully(file, Buffer.allocUnsafe(length), length, offset)
  } finally {
    await file.close()
  }
}

/** Reads `length` bytes at `offset` into `into`; returns the part filled (shorter only at the end of the file). */
export async function readFully<T extends Uint8Array> (file: FileHandle, into: T, length: number, offset: number): Promise<T> {
  let filled = 0
  while (filled < length) {
    const { bytesRead } = await file.read(into, filled, length - filled, offset + filled)
    if (bytesRead === 0) break
    filled += bytesRead
  }
  return into.subarray(0, filled) as T
}

/** BLAKE3 of a whole file, read in chunk-sized pieces. */
export async function hashWholeFile (path: string, signal?: AbortSignal): Promise<{ checksum: string, size: number }> {
  const file = await open(path, 'r')
  try {
    const hasher = createBlake3()
    const buffer = Buffer.allocUnsafe(INGEST_BUFFER_BYTES)
    let size = 0
    for (;;) {
      signal?.throwIfAborted()
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null)
      if (bytesRead === 0) break
      hasher.update(buffer.subarray(0, bytesRead))
      size += bytesRead
    }
    return { checksum: hasher.digestHex(), size }
  } finally {
    await file.close()
  }
}

/** Positional reads of a file: `length` bytes at `offset` into `into`, fewer only at its end. */
export interface PositionalReader {
  read: <T extends Uint8Array>(into: T, length: number, offset: number) => Promise<T>
}

/**
 * BLAKE3 of the first `size` bytes of an open file (positional reads: the handle's offset is
 * not used), read into `buffer` (by default a fresh one of INGEST_BUFFER_BYTES). With `from`,
 * the hasher already holds the bytes before `from.offset`.
 */
export async function hashOpenFile (file: PositionalReader, size: number, from?: { hasher: Blake3Hasher, offset: number }, buffer: Uint8Array = Buffer.allocUnsafe(INGEST_BUFFER_BYTES)): Promise<string> {
  const hasher = from?.hasher ?? createBlake3()
  for (let offset = from?.offset ?? 0; offset < size;) {
    const piece = await file.read(buffer, Math.min(buffer.byteLength, size - offset), offset)
    if (piece.length === 0) break
    hasher.update(piece)
    offset += piece.length
  }
  return hasher.digestHex()
}

export async function removeQuietly (path: string): Promise<void> {
  await rm(path, { recursive: true, force: true })
}
