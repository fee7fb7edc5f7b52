import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import type { Readable, Transform } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { READ_CHUNK_BYTES } from './constants.js'
import { ArchiveUnsupportedError } from './errors.js'

const GZIP_MAGIC = [0x1f, 0x8b]
// Formats we recognise only to say clearly that we do not read them.
const UNSUPPORTED_MAGIC: Array<{ name: string, bytes: number[], hint: string }> = [
  { name: 'zstd', bytes: [0x28, 0xb5, 0x2f, 0xfd], hint: 'decompress it with `zstd -d` first' },
  { name: 'xz', bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], hint: 'decompress it with `xz -d` first' },
  { name: 'bzip2', bytes: [0x42, 0x5a, 0x68], hint: 'decompress it with `bunzip2` first' },
]

export interface ArchiveSource {
  /** The streams to pipe in order; the last one yields tar bytes. */
  streams: [Readable] | [Readable, Transform]
  gzip: boolean
}

/**
 * Opens an archive for streaming, plain tar or gzip'ed tar, told apart by magic
 * bytes rather than the file name: `docker save | gzip > x.tar` is common.
 */
export async function openArchive (archivePath: string, options: { signal?: AbortSignal } = {}): Promise<ArchiveSource> {
  const head = await readHead(archivePath, 8)
  for (const format of UNSUPPORTED_MAGIC) {
    if (startsWith(head, format.bytes)) throw new ArchiveUnsupportedError(`${archivePath} is ${format.name}-compressed, which shoal does not read; ${format.hint}`)
  }
  const file = createReadStream(archivePath, { highWaterMark: READ_CHUNK_BYTES, signal: options.signal })
  if (startsWith(head, GZIP_MAGIC)) return { streams: [file, createGunzip({ chunkSize: 256 * 1024 })], gzip: true }
  return { streams: [file], gzip: false }
}

async function readHead (path: string, length: number): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    const buffer = Buffer.alloc(length)
    const { bytesRead } = await handle.read(buffer, 0, length, 0)
    return buffer.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}

function startsWith (bytes: Buffer, magic: number[]): boolean {
  return bytes.length >= magic.length && magic.every((byte, i) => bytes[i] === byte)
}
