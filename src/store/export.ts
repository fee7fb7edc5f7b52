import { createReadStream, createWriteStream } from 'node:fs'
import { chmod, copyFile, mkdir, readdir, rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { Writable } from 'node:stream'
import { packArchive, packTreeEntries, type ArchiveEntry, type TreeTarEntry } from '../oci/index.js'
import { DestinationExistsError, StoreError, translateWriteError } from './errors.js'
import { removeQuietly } from './object-files.js'
import type { LoadedBundle, Store } from './store.js'

export class BundleIncompleteError extends StoreError {
  constructor (id: string, missing: number) {
    super('BUNDLE_INCOMPLETE', `bundle ${id} lacks ${missing} object(s) here; pull it first (\`shoal pull ${id}\`)`)
    this.name = 'BundleIncompleteError'
  }
}

/** Checks out a bundle into a new or empty directory, with the manifest's modes. */
export async function exportTree (store: Store, id: string, dest: string, options: { signal?: AbortSignal } = {}): Promise<void> {
  const loaded = await completeBundle(store, id)
  await requireEmptyDirectory(dest)
  const entries = loaded.manifest.entries
  try {
    for (const entry of entries) {
      options.signal?.throwIfAborted()
      const target = join(dest, entry.path)
      if (entry.type === 'D') await mkdir(target, { recursive: true, mode: 0o700 })
      else {
        await copyFile(store.objectPath(entry.checksum), target)
        await chmod(target, parseInt(entry.perms, 8))
      }
    }
    // Directory modes last and deepest first: a read-only directory would refuse its own files.
    for (const entry of [...entries].reverse()) {
      if (entry.type === 'D') await chmod(join(dest, entry.path), parseInt(entry.perms, 8))
    }
  } catch (err) {
    throw translateWriteError(err, dest)
  }
  await store.touch(id)
}

/**
 * Writes a bundle as a tar (for an OCI image, an `oci-archive` that skopeo and
 * `ctr image import` read), streamed from the objects; the file appears only when complete.
 */
export async function exportArchive (store: Store, id: string, dest: string, options: { signal?: AbortSignal } = {}): Promise<void> {
  const loaded = await completeBundle(store, id)
  const staged = `${dest}.partial-${process.pid}`
  try {
    await packArchive(archiveEntries(store, loaded), createWriteStream(staged, { flags: 'wx' }), { signal: options.signal })
    await rename(staged, dest)
  } catch (err) {
    await removeQuietly(staged)
    throw translateWriteError(err, dest)
  }
  await store.touch(id)
}

/**
 * Streams a bundle to `out`: `archive` gives the bytes exportArchive writes (an oci-archive for
 * an image); `tree` a tar with the root's own entry, which a client unpacks into a directory
 * (`shoal export ID DIR` with a daemon running: the daemon never writes where it is told).
 */
export async function streamBundle (store: Store, id: string, format: 'archive' | 'tree', out: Writable, options: { signal?: AbortSignal } = {}): Promise<void> {
  const loaded = await completeBundle(store, id)
  if (format === 'archive') await packArchive(archiveEntries(store, loaded), out, { signal: options.signal })
  else await packTreeEntries(treeEntriesOf(store, loaded), out, { signal: options.signal })
  await store.touch(id)
}

function * treeEntriesOf (store: Store, loaded: LoadedBundle): Generator<TreeTarEntry> {
  for (const entry of loaded.manifest.entries) {
    const mode = parseInt(entry.perms, 8)
    const path = entry.path === './' ? '' : entry.path.slice(2).replace(/\/$/, '')
    if (entry.type === 'D') yield { path, type: 'directory', mode }
    else yield { path, type: 'file', mode, size: loaded.objectSizes.get(entry.checksum) ?? entry.size, open: () => createReadStream(store.objectPath(entry.checksum)) }
  }
}

/** Checks that a bundle can be streamed (complete, known) before an answer's headers go out. */
export async function requireCompleteBundle (store: Store, id: string): Promise<void> {
  await completeBundle(store, id)
}

async function * archiveEntries (store: Store, loaded: LoadedBundle): AsyncGenerator<ArchiveEntry> {
  for (const entry of loaded.manifest.entries) {
    if (entry.path === './') continue
    const path = entry.path.slice(2)
    const mode = parseInt(entry.perms, 8)
    if (entry.type === 'D') yield { path: path.slice(0, -1), mode, type: 'directory' }
    // A symlink's entry states the link's size (snapdir's rule); the archive holds the bytes.
    else yield { path, mode, size: loaded.objectSizes.get(entry.checksum) ?? entry.size, open: () => createReadStream(store.objectPath(entry.checksum)) }
  }
}

async function completeBundle (store: Store, id: string): Promise<LoadedBundle> {
  const loaded = await store.requireBundle(id)
  let missing = 0
  for (const hash of loaded.objectSizes.keys()) if (!await store.hasObject(hash)) missing++
  if (missing > 0) throw new BundleIncompleteError(id, missing)
  return loaded
}

async function requireEmptyDirectory (dest: string): Promise<void> {
  try {
    if ((await readdir(dest)).length > 0) throw new DestinationExistsError(dest)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

