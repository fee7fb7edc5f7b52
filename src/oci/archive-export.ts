import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'
import { ArchiveEntrySizeMismatchError } from './errors.js'
import { normalizeEntryPath } from './tar-path.js'

export interface ArchiveFileEntry {
  /** Layout-relative path, e.g. `blobs/sha256/<hex>`. */
  path: string
  mode: number
  size: number
  /** Called once, when the entry's turn comes, so only one file is open at a time. */
  open: () => NodeJS.ReadableStream | Readable
}

export interface ArchiveDirectoryEntry {
  path: string
  mode: number
  type: 'directory'
}

export type ArchiveEntry = ArchiveFileEntry | ArchiveDirectoryEntry

// Fixed header fields: the same entries must give the same archive bytes on every node.
const FIXED_HEADER = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' }

/**
 * Streams entries into a tar on `out` (ended when the archive is complete), in
 * the order given; with a layout's entries this is what `skopeo … oci-archive:FILE`
 * and `ctr image import` read. Deterministic: mtime 0, uid/gid 0, no owner names,
 * the modes given. Paths are checked like imported ones (no absolute, no `..`).
 */
export async function packArchive (entries: AsyncIterable<ArchiveEntry> | Iterable<ArchiveEntry>, out: Writable, options: { signal?: AbortSignal } = {}): Promise<void> {
  const { signal } = options
  const pack = tar.pack()
  // Kept as a value so a failing `out` is never an unhandled rejection while entries are still being added.
  const written = pipeline(pack, out, { signal }).then(() => undefined, (err: unknown) => err)
  try {
    for await (const entry of entries) {
      signal?.throwIfAborted()
      const name = normalizeEntryPath(entry.path)
      if ('type' in entry) await addDirectory(pack, name, entry.mode)
      else await addFile(pack, name, entry)
    }
    pack.finalize()
  } catch (err) {
    pack.destroy(err as Error)
    // When `out` failed first, the pack was destroyed under us and `err` is only the echo
    // ("already destroyed"); the pipeline's error is the cause. Otherwise it is `err` itself.
    throw (await written) ?? err
  }
  const err = await written
  if (err !== undefined) throw err
}

async function addDirectory (pack: tar.Pack, name: string, mode: number): Promise<void> {
  // The root is implied; skopeo writes no `./` entry either.
  if (name === '') return
  await new Promise<void>((resolve, reject) => {
    pack.entry({ ...FIXED_HEADER, name: `${name}/`, type: 'directory', mode }, err => { if (err) reject(err); else resolve() })
  })
}

async function addFile (pack: tar.Pack, name: string, entry: ArchiveFileEntry): Promise<void> {
  let settle: (err?: Error | null) => void = () => {}
  // tar-stream calls back once the entry is closed: done, or failed with the pack.
  const closed = new Promise<void>((resolve, reject) => { settle = err => { if (err) reject(err); else resolve() } })
  // Observed below; this only keeps an early throw from leaving it unhandled.
  closed.catch(() => {})
  const sink = pack.entry({ ...FIXED_HEADER, name, type: 'file', mode: entry.mode, size: entry.size }, err => { settle(err) })
  // streamx emits 'error' on an entry destroyed with its pack; the callback above already reports it.
  sink.on('error', () => {})
  let length = 0
  for await (const piece of entry.open()) {
    const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece
    length += bytes.length
    // Checked before writing: an oversized entry would shift every entry after it.
    if (length > entry.size) throw new ArchiveEntrySizeMismatchError(name, entry.size, length)
    if (!sink.write(bytes)) await Promise.race([new Promise<void>(resolve => { sink.once('drain', () => { resolve() }) }), closed])
  }
  if (length !== entry.size) throw new ArchiveEntrySizeMismatchError(name, entry.size, length)
  sink.end(undefined)
  await closed
}
