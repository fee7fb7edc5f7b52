import type { Readable, Writable } from 'node:stream'
import { packTar, type PackEntry } from './tar-pack.js'

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

/**
 * Streams entries into a tar on `out` (ended when the archive is complete), in
 * the order given; with a layout's entries this is what `skopeo … oci-archive:FILE`
 * and `ctr image import` read. Deterministic: mtime 0, uid/gid 0, no owner names,
 * the modes given. Paths are checked like imported ones (no absolute, no `..`).
 */
export async function packArchive (entries: AsyncIterable<ArchiveEntry> | Iterable<ArchiveEntry>, out: Writable, options: { signal?: AbortSignal } = {}): Promise<void> {
  await packTar(asPackEntries(entries), out, options)
}

async function * asPackEntries (entries: AsyncIterable<ArchiveEntry> | Iterable<ArchiveEntry>): AsyncGenerator<PackEntry> {
  for await (const entry of entries) yield 'type' in entry ? entry : { ...entry, type: 'file' }
}
