// A .torrent for the bed's BitTorrent baseline (BEP 3 metainfo): the source layout's
// files as one multi-file torrent. aria2c downloads and seeds but cannot make a
// torrent, and the bencoding is twenty lines, so no Debian tool is needed for it.
import { createHash } from 'node:crypto'
import { open, readdir } from 'node:fs/promises'
import { basename, join, relative, sep } from 'node:path'

export type Bencodable = number | string | Buffer | Bencodable[] | { [key: string]: Bencodable }

/**
 * BEP 3 bencoding. Strings are UTF-8 byte strings; dictionary keys go in the raw-byte
 * order the spec requires (a client re-encodes `info` to get the info hash, so an
 * unsorted dictionary would give another hash than ours).
 */
export function bencode (value: Bencodable): Buffer {
  const parts: Buffer[] = []
  const walk = (v: Bencodable): void => {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new RangeError(`bencode: ${v} is not an integer`)
      parts.push(Buffer.from(`i${v}e`))
    } else if (typeof v === 'string' || Buffer.isBuffer(v)) {
      const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v
      parts.push(Buffer.from(`${bytes.length}:`), bytes)
    } else if (Array.isArray(v)) {
      parts.push(Buffer.from('l'))
      for (const item of v) walk(item)
      parts.push(Buffer.from('e'))
    } else {
      parts.push(Buffer.from('d'))
      const keys = Object.keys(v).map(k => Buffer.from(k, 'utf8')).sort(Buffer.compare)
      for (const key of keys) {
        walk(key)
        walk(v[key.toString('utf8')] as Bencodable)
      }
      parts.push(Buffer.from('e'))
    }
  }
  walk(value)
  return Buffer.concat(parts)
}

export interface Torrent {
  /** The metainfo file's bytes. */
  metainfo: Buffer
  /** SHA-1 of the bencoded info dictionary: what peers and the tracker know the torrent by. */
  infoHash: Buffer
  pieceCount: number
  totalBytes: number
}

export interface TorrentInit {
  announce: string
  /** Bytes per piece (BEP 3: a power of two; 1 MiB for the bed). */
  pieceBytes: number
  signal?: AbortSignal
}

/**
 * A multi-file torrent of every file under `dir`, named after the directory: a client
 * given `-d PARENT` reads or writes them at PARENT/<name>/…. Files go in sorted path
 * order and the pieces run across file boundaries, as BEP 3 says.
 */
export async function makeTorrent (dir: string, init: TorrentInit): Promise<Torrent> {
  const { pieceBytes, signal } = init
  if (!Number.isSafeInteger(pieceBytes) || pieceBytes < 16 * 1024 || (pieceBytes & (pieceBytes - 1)) !== 0) {
    throw new RangeError(`piece size ${pieceBytes} is not a power of two of at least 16 KiB`)
  }
  const paths = (await listFiles(dir)).sort()
  const files: Array<{ length: number, path: string[] }> = []
  const hashes: Buffer[] = []
  const piece = Buffer.alloc(pieceBytes)
  let filled = 0
  let totalBytes = 0
  for (const path of paths) {
    signal?.throwIfAborted()
    const handle = await open(path, 'r')
    let length = 0
    try {
      for (;;) {
        const { bytesRead } = await handle.read(piece, filled, pieceBytes - filled, null)
        if (bytesRead === 0) break
        filled += bytesRead
        length += bytesRead
        if (filled === pieceBytes) {
          hashes.push(createHash('sha1').update(piece).digest())
          filled = 0
        }
      }
    } finally {
      await handle.close()
    }
    files.push({ length, path: relative(dir, path).split(sep) })
    totalBytes += length
  }
  if (filled > 0) hashes.push(createHash('sha1').update(piece.subarray(0, filled)).digest())
  if (totalBytes === 0) throw new RangeError(`${dir} holds no bytes to make a torrent of`)
  const info = { name: basename(dir), 'piece length': pieceBytes, pieces: Buffer.concat(hashes), files }
  const infoHash = createHash('sha1').update(bencode(info)).digest()
  return { metainfo: bencode({ announce: init.announce, info }), infoHash, pieceCount: hashes.length, totalBytes }
}

async function listFiles (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...await listFiles(path))
    else if (entry.isFile()) out.push(path)
  }
  return out
}

/** The info hash as a tracker query wants it: every byte %-escaped. */
export function infoHashQuery (infoHash: Buffer): string {
  return [...infoHash].map(b => `%${b.toString(16).padStart(2, '0')}`).join('')
}
