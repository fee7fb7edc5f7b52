import { execFile } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { createWriteStream } from 'node:fs'
import tar from 'tar-stream'
import { createSha256 } from '../../src/hash/index.js'
import { LAYOUT_DIR_MODE, LAYOUT_FILE_MODE, type ArchiveEntry } from '../../src/oci/index.js'

const execFileAsync = promisify(execFile)

/** A fresh directory under the OS temp dir; remove it with `removeTempDir`. */
export async function makeTempDir (label: string): Promise<string> {
  return await mkdtemp(join(tmpdir(), `shoal-oci-${label}-`))
}

export async function removeTempDir (dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
}

/** Runs skopeo with a fixed umask (its layout modes follow the umask) and returns stdout. */
export async function skopeo (args: string[], options: { umask?: string } = {}): Promise<string> {
  const quoted = args.map(arg => `'${arg.replaceAll("'", "'\\''")}'`).join(' ')
  const { stdout } = await execFileAsync('sh', ['-c', `umask ${options.umask ?? '022'} && exec skopeo ${quoted}`], { maxBuffer: 16 * 1024 * 1024 })
  return stdout
}

export interface TreeEntry { mode: string, sha256?: string }

/** Every path under dir (relative, sorted) with its octal mode and, for files, sha256. */
export async function describeTree (dir: string): Promise<Record<string, TreeEntry>> {
  const tree: Record<string, TreeEntry> = {}
  const walk = async (rel: string): Promise<void> => {
    const info = await lstat(join(dir, rel))
    const mode = (info.mode & 0o7777).toString(8)
    if (info.isDirectory()) {
      tree[rel === '' ? './' : `${rel}/`] = { mode }
      for (const name of (await readdir(join(dir, rel))).sort()) await walk(rel === '' ? name : `${rel}/${name}`)
    } else {
      tree[rel] = { mode, sha256: await sha256OfFile(join(dir, rel)) }
    }
  }
  await walk('')
  return tree
}

export async function sha256OfFile (path: string): Promise<string> {
  const hasher = createSha256()
  for await (const piece of createReadStream(path)) hasher.update(piece as Buffer)
  return hasher.digest('hex')
}

/** Entries of a layout dir for packArchive, in skopeo's order: blobs/ first, then index.json, oci-layout. */
export async function * layoutEntries (dir: string): AsyncGenerator<ArchiveEntry> {
  yield { path: 'blobs', mode: LAYOUT_DIR_MODE, type: 'directory' }
  yield { path: 'blobs/sha256', mode: LAYOUT_DIR_MODE, type: 'directory' }
  const files = (await readdir(join(dir, 'blobs', 'sha256'))).sort().map(name => `blobs/sha256/${name}`)
  for (const path of [...files, 'index.json', 'oci-layout']) {
    const size = (await lstat(join(dir, path))).size
    yield { path, mode: LAYOUT_FILE_MODE, size, open: () => createReadStream(join(dir, path)) }
  }
}

export type TarSpec =
  | { name: string, content: Buffer | string, mode?: number }
  | { name: string, type: 'directory' }
  | { name: string, type: 'symlink' | 'link', linkname: string }

/** Writes a tar built from specs (for archives no real tool writes: unsafe paths, odd links). */
export async function writeTar (path: string, specs: TarSpec[]): Promise<void> {
  const pack = tar.pack()
  const written = pipeline(pack, createWriteStream(path))
  for (const spec of specs) {
    if ('content' in spec) pack.entry({ name: spec.name, mode: spec.mode ?? 0o644 }, spec.content)
    else if (spec.type === 'directory') pack.entry({ name: spec.name, type: 'directory', mode: 0o755 })
    else pack.entry({ name: spec.name, type: spec.type, linkname: spec.linkname })
  }
  pack.finalize()
  await written
}
