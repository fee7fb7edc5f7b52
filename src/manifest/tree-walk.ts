import { opendir, realpath, stat } from 'node:fs/promises'
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

export interface WalkOptions {
  hashFile?: FileHasher
  signal?: AbortSignal
}

const defaultHasher: FileHasher = async (absolutePath, _manifestPath, options) => {
  const { hex, size } = await blake3File(absolutePath, options)
  return { checksum: hex, size }
}

/**
 * The snapdir manifest entries of a directory tree. Symlinks are followed (an entry takes
 * its target's type and content) unless they leave the tree; sockets, FIFOs and devices are
 * skipped, as snapdir's `find -type f/-type d` does.
 */
export async function walkTree (root: string, options: WalkOptions = {}): Promise<ManifestEntry[]> {
  const walker = new TreeWalker(await realpath(root), options)
  await walker.walkDirectory(walker.root, './', [walker.root])
  return walker.entries.sort((a, b) => comparePaths(a.path, b.path))
}

class TreeWalker {
  readonly entries: ManifestEntry[] = []
  private readonly hashFile: FileHasher

  constructor (readonly root: string, private readonly options: WalkOptions) {
    this.hashFile = options.hashFile ?? defaultHasher
  }

  /** Returns the directory's entry after adding its whole subtree. `ancestors` are real paths, to refuse symlink loops. */
  async walkDirectory (absolutePath: string, manifestPath: string, ancestors: string[]): Promise<ManifestEntry> {
    const children: ManifestEntry[] = []
    const names: string[] = []
    for await (const dirent of await opendir(absolutePath)) names.push(dirent.name)
    names.sort((a, b) => comparePaths(a, b))
    for (const name of names) {
      this.options.signal?.throwIfAborted()
      const child = await this.walkChild(join(absolutePath, name), manifestPath + name, ancestors)
      if (child !== undefined) children.push(child)
    }
    const info = await stat(absolutePath)
    const entry: ManifestEntry = {
      type: 'D',
      perms: permsOf(info.mode),
      checksum: directoryChecksum(children.map(c => c.checksum)),
      size: children.reduce((sum, c) => sum + c.size, 0),
      path: manifestPath,
    }
    this.add(entry)
    return entry
  }

  private async walkChild (absolutePath: string, manifestPath: string, ancestors: string[]): Promise<ManifestEntry | undefined> {
    const target = await this.resolveInsideTree(absolutePath, manifestPath)
    const info = await stat(target)
    if (info.isDirectory()) {
      if (ancestors.includes(target)) {
        throw new ManifestError('MANIFEST_SYMLINK_LOOP', `${JSON.stringify(manifestPath)} links back to one of its own parent directories; remove the link`)
      }
      return await this.walkDirectory(target, manifestPath + '/', [...ancestors, target])
    }
    if (!info.isFile()) return undefined
    checkManifestPath(manifestPath)
    const hashed = await this.hashFile(target, manifestPath, { signal: this.options.signal })
    const entry: ManifestEntry = { type: 'F', perms: permsOf(info.mode), checksum: hashed.checksum, size: hashed.size, path: manifestPath }
    this.add(entry)
    return entry
  }

  private async resolveInsideTree (absolutePath: string, manifestPath: string): Promise<string> {
    const target = await realpath(absolutePath)
    const rel = relative(this.root, target)
    if (rel === '..' || rel.startsWith('..' + sep) || rel.startsWith(sep)) throw new SymlinkEscapeError(manifestPath, target)
    return target
  }

  private add (entry: ManifestEntry): void {
    this.entries.push(entry)
    if (this.entries.length > MAX_MANIFEST_ENTRIES) throw new ManifestTooLargeError('entries', MAX_MANIFEST_ENTRIES)
  }
}

/** `stat -c %a`: permission bits in octal, no leading zeros. */
export function permsOf (mode: number): string {
  return (mode & 0o7777).toString(8)
}
