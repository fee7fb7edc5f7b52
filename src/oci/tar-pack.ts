import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'
import { ArchiveEntrySizeMismatchError } from './errors.js'
import { normalizeEntryPath } from './tar-path.js'

/** One entry to pack; `path` is relative, `''` for the root directory. */
export type PackEntry =
  | { path: string, type: 'directory', mode: number }
  /** `open` is called once, when the entry's turn comes, so only one file is open at a time. */
  | { path: string, type: 'file', mode: number, size: number, open: () => NodeJS.ReadableStream | Readable }
  | { path: string, type: 'symlink', mode: number, target: string }

// Fixed header fields: the same entries give the same bytes on every node, and no owner crosses over.
const FIXED_HEADER = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' }

/**
 * Streams entries into a tar on `out` (ended when the tar is complete), in the order given.
 * Deterministic: mtime 0, uid/gid 0, no owner names, the modes given. Paths are checked like
 * unpacked ones (no absolute, no `..`). The root directory is written as `./` with
 * `rootEntry` (a tree tar carries the root's mode), else left implied (skopeo writes none).
 * Shared by image archives (archive-export) and tree tars (tree-tar).
 */
export async function packTar (entries: AsyncIterable<PackEntry> | Iterable<PackEntry>, out: Writable, options: { signal?: AbortSignal, rootEntry?: boolean } = {}): Promise<void> {
  const { signal } = options
  const pack = tar.pack()
  // Kept as a value so a failing `out` is never an unhandled rejection while entries are still being added.
  const written = pipeline(pack, out, { signal }).then(() => undefined, (err: unknown) => err)
  try {
    for await (const entry of entries) {
      signal?.throwIfAborted()
      const name = normalizeEntryPath(entry.path)
      if (entry.type === 'file') await addFile(pack, name, entry)
      else if (entry.type === 'symlink') await addEntry(pack, { ...FIXED_HEADER, name, type: 'symlink', mode: entry.mode, linkname: entry.target })
      else if (name !== '') await addEntry(pack, { ...FIXED_HEADER, name: `${name}/`, type: 'directory', mode: entry.mode })
      else if (options.rootEntry === true) await addEntry(pack, { ...FIXED_HEADER, name: './', type: 'directory', mode: entry.mode })
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

async function addEntry (pack: tar.Pack, header: Parameters<tar.Pack['entry']>[0]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    pack.entry(header, err => { if (err) reject(err); else resolve() })
  })
}

async function addFile (pack: tar.Pack, name: string, entry: Extract<PackEntry, { type: 'file' }>): Promise<void> {
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
    const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece as Buffer
    length += bytes.length
    // Checked before writing: an oversized entry would shift every entry after it.
    if (length > entry.size) throw new ArchiveEntrySizeMismatchError(name, entry.size, length)
    if (!sink.write(bytes)) await Promise.race([new Promise<void>(resolve => { sink.once('drain', () => { resolve() }) }), closed])
  }
  if (length !== entry.size) throw new ArchiveEntrySizeMismatchError(name, entry.size, length)
  sink.end(undefined)
  await closed
}
