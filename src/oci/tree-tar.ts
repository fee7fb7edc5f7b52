import { createReadStream, createWriteStream } from 'node:fs'
import { chmod, lstat, mkdir, readdir, readlink, rm, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'
import { ArchiveDestinationNotEmptyError, ArchiveDuplicateEntryError, ArchiveTooLargeError, ArchiveUnsafePathError, ArchiveUnsupportedError, OciError } from './errors.js'
import { packTar, type PackEntry } from './tar-pack.js'
import { normalizeEntryPath, resolveSymlinkTarget } from './tar-path.js'

// A tree tar is how a directory crosses the control API (docs/architecture.md "Paths never
// cross the control API"): the CLI packs what it pushes and unpacks what it exports, the
// daemon the other way round, so neither ever acts on a path the other names.

/** The root's own entry, so its mode travels too. */
const ROOT_ENTRY = './'

export type TreeTarEntry = PackEntry

/** Writes entries as a tar on `out` (ended when done); `path` is tree-relative, `''` for the root, written as `./`. */
export async function packTreeEntries (entries: AsyncIterable<TreeTarEntry> | Iterable<TreeTarEntry>, out: Writable, options: { signal?: AbortSignal } = {}): Promise<void> {
  await packTar(entries, out, { ...options, rootEntry: true })
}

/**
 * The entries of a directory as they are on disk (lstat: a symlink stays a symlink, so the
 * receiver walks the same tree), parents before children, names sorted. Anything but a
 * file, directory or symlink is refused: a push could not hold it either.
 */
export async function * treeEntries (dir: string, signal?: AbortSignal): AsyncGenerator<TreeTarEntry> {
  const root = await lstat(dir)
  if (!root.isDirectory()) throw new ArchiveUnsupportedError(`${dir} is not a directory`)
  yield { path: '', type: 'directory', mode: root.mode & 0o7777 }
  const pending: string[] = ['']
  while (pending.length > 0) {
    const relative = pending.shift() ?? ''
    const names = (await readdir(join(dir, relative))).sort()
    for (const name of names) {
      signal?.throwIfAborted()
      const path = relative === '' ? name : `${relative}/${name}`
      const absolute = join(dir, path)
      const info = await lstat(absolute)
      const mode = info.mode & 0o7777
      if (info.isDirectory()) {
        yield { path, type: 'directory', mode }
        pending.push(path)
      } else if (info.isFile()) {
        yield { path, type: 'file', mode, size: info.size, open: () => createReadStream(absolute) }
      } else if (info.isSymbolicLink()) {
        yield { path, type: 'symlink', mode, target: await readlink(absolute) }
      } else {
        throw new ArchiveUnsupportedError(`${absolute} is neither a file, a directory nor a symlink; push a tree without sockets, fifos or devices`)
      }
    }
  }
}

export interface ExtractTreeOptions {
  signal?: AbortSignal
  /** Accept symlink entries whose target stays inside the tree (a push); an export holds none. */
  symlinks?: boolean
  /** Refuse the stream once its files add up to more than this. */
  maxBytes?: number
  /** Mode bits kept from the headers (a daemon keeps no setuid bits from a client). */
  modeMask?: number
}

export interface ExtractedTree {
  files: number
  bytes: number
  /**
   * The full modes (with setuid/setgid) of entries `modeMask` kept off the files on disk, by
   * path (`a/b`, the root `''`): the files stay harmless, the bundle can still record them.
   */
  maskedModes: Map<string, number>
}

/**
 * Unpacks a tree tar into `dest` (absent or empty), each file streamed to disk. Refused, with
 * nothing left behind: absolute paths, `..`, NUL, a path twice, an entry whose parent is not a
 * directory entry seen before it (so nothing is ever written through a link), hardlinks,
 * devices and fifos, symlinks (unless allowed, and then only ones that stay inside).
 * Directory modes are set last, deepest first, so a read-only directory still gets its files.
 */
export async function extractTree (input: Readable, dest: string, options: ExtractTreeOptions = {}): Promise<ExtractedTree> {
  const { signal } = options
  const mask = options.modeMask ?? 0o7777
  const created = await prepare(dest)
  const directories = new Map<string, number>()
  const maskedModes = new Map<string, number>()
  const seen = new Set<string>()
  let files = 0
  let bytes = 0
  const extract = tar.extract()
  const fed = pipeline(input, extract, { signal }).then(() => undefined, (err: unknown) => err)
  try {
    for await (const entry of extract) {
      signal?.throwIfAborted()
      const { header } = entry
      const path = normalizeEntryPath(header.name)
      const mode = (header.mode ?? 0o644) & mask
      if (mode !== ((header.mode ?? 0o644) & 0o7777) && header.type !== 'symlink') maskedModes.set(path, (header.mode ?? 0o644) & 0o7777)
      if (path === '') {
        if (header.type !== 'directory') throw new ArchiveUnsafePathError(header.name, 'the root must be a directory')
        if (directories.has('')) throw new ArchiveDuplicateEntryError(ROOT_ENTRY)
        directories.set('', mode)
        entry.resume()
        continue
      }
      if (seen.has(path)) throw new ArchiveDuplicateEntryError(path)
      seen.add(path)
      const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : ''
      if (parent !== '' && !directories.has(parent)) throw new ArchiveUnsafePathError(header.name, `its parent ${JSON.stringify(parent)} is not a directory entry before it`)
      const target = join(dest, path)
      if (header.type === 'directory') {
        await mkdir(target, { mode: 0o700 })
        directories.set(path, mode)
        entry.resume()
      } else if (header.type === 'file' || header.type === 'contiguous-file') {
        bytes += header.size ?? 0
        if (options.maxBytes !== undefined && bytes > options.maxBytes) throw new ArchiveTooLargeError(options.maxBytes)
        await pipeline(entry, createWriteStream(target, { flags: 'wx', mode: 0o600 }), { signal })
        await chmod(target, mode)
        files++
      } else if (header.type === 'symlink' && options.symlinks === true) {
        resolveSymlinkTarget(path, header.linkname ?? '')
        await symlink(header.linkname ?? '', target)
        entry.resume()
      } else {
        throw new ArchiveUnsupportedError(`tree entry ${JSON.stringify(header.name)} is a ${header.type ?? 'entry of unknown type'}; a tree here holds only files and directories${options.symlinks === true ? ' and symlinks' : ''}`)
      }
    }
    const feedError = await fed
    if (feedError !== undefined) throw feedError
    for (const [path, mode] of [...directories].reverse()) await chmod(join(dest, path), mode)
    return { files, bytes, maskedModes }
  } catch (err) {
    extract.destroy()
    const feedError = await fed
    await undo(dest, created)
    // Our refusals come from the loop; when the input failed, the loop sees only an echo.
    throw err instanceof OciError ? err : feedError ?? err
  }
}

async function prepare (dest: string): Promise<boolean> {
  const created = await mkdir(dest, { recursive: true, mode: 0o700 })
  if (created === undefined && (await readdir(dest)).length > 0) throw new ArchiveDestinationNotEmptyError(dest)
  return created !== undefined
}

async function undo (dest: string, created: boolean): Promise<void> {
  if (created) {
    await rm(dest, { recursive: true, force: true })
    return
  }
  // dest was empty when we started, so everything in it is ours.
  for (const name of await readdir(dest).catch(() => [])) await rm(join(dest, name), { recursive: true, force: true })
}
