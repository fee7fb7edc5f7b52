import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { snapdirId } from '../manifest/index.js'
import { StoreError } from './errors.js'
import { ingestFile } from './ingest.js'
import { shardHash } from './layout.js'
import { fileExists, publishObject, removeQuietly } from './object-files.js'

/**
 * A store in snapdir's file-store layout (`file://PATH`): `.objects/` and `.manifests/`,
 * both sharded like objects/, the manifest stored under its snapdir ID.
 */
export class FileStore {
  constructor (readonly root: string) {}

  objectPath (hash: string): string { return join(this.root, '.objects', ...shardHash(hash)) }
  manifestPath (id: string): string { return join(this.root, '.manifests', ...shardHash(id)) }

  async hasObject (hash: string): Promise<boolean> { return await fileExists(this.objectPath(hash)) }

  async readManifest (id: string): Promise<string> {
    let text: string
    try {
      text = await readFile(this.manifestPath(id), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StoreError('MANIFEST_NOT_FOUND', `no manifest ${id} in file store ${this.root}`)
      throw err
    }
    const actual = snapdirId(text)
    if (actual !== id) throw new StoreError('MANIFEST_CORRUPT', `manifest ${id} in ${this.root} hashes to ${actual}; the file store is damaged`)
    return text
  }

  async writeManifest (text: string): Promise<string> {
    const id = snapdirId(text)
    const path = this.manifestPath(id)
    await mkdir(join(path, '..'), { recursive: true })
    await writeFile(path, text.replace(/\n*$/, '\n'))
    return id
  }

  /** Copies a file in as object `hash`, hashing the copy; a mismatch stores nothing. */
  async putObject (source: string, hash: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    // The first object sent to a new file store creates it, as `--data` creates a data dir.
    await mkdir(this.root, { recursive: true })
    const staging = await mkdtemp(join(this.root, '.tmp-'))
    try {
      const copy = await ingestFile(source, { copyTo: join(staging, 'object'), signal: options.signal })
      if (copy.checksum !== hash) throw new StoreError('OBJECT_CORRUPT', `${source} hashes to ${copy.checksum}, not ${hash}; it was not copied`)
      await publishObject(copy.stagedPath, this.objectPath(hash))
    } finally {
      await removeQuietly(staging)
    }
  }
}
