import { lstat, opendir, realpath, stat } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { blake3File } from '../hash/index.js'
import { MAX_MANIFEST_ENTRIES } from './constants.js'
import { ManifestError, ManifestTooLargeError, SymlinkEscapeError } from './errors.js'
import { checkManifestPath, comparePaths } from './path-rules.js'
import { directoryChecksum, type ManifestEntry } from './snapdir-manifest.js'

/** What the walk learns of one regular file; `checksum` is its BLAKE3. */
export interface HashedFile { checksum: string, size: number }

/**
 * Hashes one file found by the walk. The store passes one that copies the bytes in while
 * hashing them, so a push reads every file exactly once.
 */
export type FileHasher = (absolutePath: string, manifestPath: string, options: { signal?: AbortSignal }) => Promise<HashedFile>

/** Something the walk left out, and why: the caller decides how to tell a person. */
export interface WalkWarning { code: 'MANIFEST_DANGLING_SYMLINK', path: string, message: string }

export interface WalkOptions {
  hashFile?: FileHasher
  /** Called for every entry the walk skips (a dangling symlink), as snapdir skips it. */
  onWarning?: (warning: WalkWarning) => void
  /**
   * Files hashed at once (default 1). The entries do not depend on it: they are sorted at the
   * end, and a directory's checksum waits for all of its children.
   */
  concurrency?: number
  signal?: AbortSignal
}

/** An entry whose checksum may still be computing; the walk goes on meanwhile. */
interface PendingEntry { entry: Promise<ManifestEntry> }

const defaultHasher: FileHasher = async (absolutePath, _manifestPath, options) => {
  const { hex, size } = await blake3File(absolutePath, options)
  return { checksum: hex, size }
}

/**
 * The snapdir manifest entries of a directory tree, by snapdir's rule (checked against
 * snapdir 0.4.2): symlinks are followed for content (`find -L`) but `stat` does not follow,
 * so a link's entry has the link's own PERMS (`777`) and, for a link to a file, the link's
 * own SIZE (the length of the link text) with the target's checksum. A link that leaves the
 * tree is refused; a dangling link is skipped with a warning, as `find -L -type f` skips it;
 * sockets, FIFOs and devices are skipped, as snapdir's `find -type f/-type d` does.
 */
export async function walkTree (root: string, options: WalkOptions = {}): Promise<ManifestEntry[]> {
  const walker = new TreeWalker(await realpath(root), options)
  try {
    await (await walker.walkDirectory(walker.root, './', [walker.root])).entry
  } catch (err) {
    // Hashes already started finish (or fail) before the caller hears of the error: a caller
    // that cleans up after a failed walk must not race files still being written for it.
    await walker.settle()
    throw err
  }
  return walker.entries.sort((a, b) => comparePaths(a.path, b.path))
}

class TreeWalker {
  readonly entries: ManifestEntry[] = []
  private readonly hashFile: FileHasher
  private readonly concurrency: number
  private running = 0
  private readonly waiting: Array<() => void> = []
  private readonly hashing = new Set<Promise<void>>()
  private failure: { error: unknown } | undefined

  constructor (readonly root: string, private readonly options: WalkOptions) {
    this.hashFile = options.hashFile ?? defaultHasher
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 1))
  }

  /**
   * Adds the directory's whole subtree; its entry settles once every file below it is hashed.
   * `ancestors` are real paths, to refuse symlink loops.
   */
  async walkDirectory (absolutePath: string, manifestPath: string, ancestors: string[], linkPerms?: string): Promise<PendingEntry> {
    const children: PendingEntry[] = []
    const names: string[] = []
    for await (const dirent of await opendir(absolutePath)) names.push(dirent.name)
    names.sort((a, b) => comparePaths(a, b))
    for (const name of names) {
      this.options.signal?.throwIfAborted()
      const child = await this.walkChild(join(absolutePath, name), manifestPath + name, ancestors)
      if (child !== undefined) children.push(child)
    }
    const info = await stat(absolutePath)
    const entry = Promise.all(children.map(async c => await c.entry)).then(settled => {
      const directory: ManifestEntry = {
        type: 'D',
        perms: linkPerms ?? permsOf(info.mode),
        checksum: directoryChecksum(settled.map(c => c.checksum)),
        size: settled.reduce((sum, c) => sum + c.size, 0),
        path: manifestPath,
      }
      this.add(directory)
      return directory
    })
    return { entry: handled(entry) }
  }

  /** Waits for every hash already started, whatever its outcome. */
  async settle (): Promise<void> {
    while (this.hashing.size > 0) await Promise.all(this.hashing)
  }

  /**
   * A child takes one of `concurrency` places while it is resolved and, for a file, hashed; a
   * directory gives its place back before its own children are walked.
   */
  private async walkChild (absolutePath: string, manifestPath: string, ancestors: string[]): Promise<PendingEntry | undefined> {
    await this.takePlace()
    let placeHeld = true
    try {
      const own = await lstat(absolutePath)
      const link = own.isSymbolicLink() ? own : undefined
      const target = await this.resolveInsideTree(absolutePath, manifestPath)
      if (target === undefined) return undefined
      const info = await stat(target)
      if (info.isDirectory()) {
        placeHeld = false
        this.givePlace()
        if (ancestors.includes(target)) {
          throw new ManifestError('MANIFEST_SYMLINK_LOOP', `${JSON.stringify(manifestPath)} links back to one of its own parent directories; remove the link`)
        }
        return await this.walkDirectory(target, manifestPath + '/', [...ancestors, target], link === undefined ? undefined : permsOf(link.mode))
      }
      if (!info.isFile()) return undefined
      checkManifestPath(manifestPath)
      // Another hash may have failed while this child was being resolved.
      this.throwIfFailed()
      const entry = (async () => {
        const hashed = await this.hashFile(target, manifestPath, { signal: this.options.signal })
        const file: ManifestEntry = link === undefined
          ? { type: 'F', perms: permsOf(info.mode), checksum: hashed.checksum, size: hashed.size, path: manifestPath }
          : { type: 'F', perms: permsOf(link.mode), checksum: hashed.checksum, size: link.size, path: manifestPath, objectSize: hashed.size }
        this.add(file)
        return file
      })()
      // From here the place is the hash's: it is given back when the hash settles.
      placeHeld = false
      const settled: Promise<void> = entry.then(() => {}, (err: unknown) => { this.failure ??= { error: err } })
        .finally(() => {
          this.hashing.delete(settled)
          this.givePlace()
        })
      this.hashing.add(settled)
      return { entry: handled(entry) }
    } finally {
      if (placeHeld) this.givePlace()
    }
  }

  /** Waits for a free place; after a hash failed, no new work starts and its error is thrown. */
  private async takePlace (): Promise<void> {
    while (this.running >= this.concurrency) await new Promise<void>(resolve => this.waiting.push(resolve))
    this.throwIfFailed()
    this.running++
  }

  private throwIfFailed (): void {
    if (this.failure !== undefined) throw this.failure.error
  }

  private givePlace (): void {
    this.running--
    this.waiting.shift()?.()
  }

  /** The real path of a child, or undefined for a dangling symlink (reported, then skipped). */
  private async resolveInsideTree (absolutePath: string, manifestPath: string): Promise<string | undefined> {
    let target: string
    try {
      target = await realpath(absolutePath)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      this.options.onWarning?.({
        code: 'MANIFEST_DANGLING_SYMLINK',
        path: manifestPath,
        message: `skipping ${JSON.stringify(manifestPath)}: it is a symlink to something that does not exist (snapdir skips it too)`,
      })
      return undefined
    }
    const rel = relative(this.root, target)
    if (rel === '..' || rel.startsWith('..' + sep) || rel.startsWith(sep)) throw new SymlinkEscapeError(manifestPath, target)
    return target
  }

  private add (entry: ManifestEntry): void {
    this.entries.push(entry)
    if (this.entries.length > MAX_MANIFEST_ENTRIES) throw new ManifestTooLargeError('entries', MAX_MANIFEST_ENTRIES)
  }
}

/** Marks a promise as handled: its rejection is seen by whoever awaits it, or by the walk's failure. */
function handled<T> (promise: Promise<T>): Promise<T> {
  promise.catch(() => {})
  return promise
}

/** `stat -c %a`: permission bits in octal, no leading zeros. */
export function permsOf (mode: number): string {
  return (mode & 0o7777).toString(8)
}
