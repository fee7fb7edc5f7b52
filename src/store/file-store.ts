import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { snapdirId } from '../manifest/index.js'
import type { StoredSnapshot } from './bucket-store.js'
import { StoreError } from './errors.js'
import { shardHash } from './layout.js'
import { fileExists } from './object-files.js'

/**
 * A store in snapdir's file-store layout (`file://PATH`): `.objects/` and `.manifests/`,
 * both sharded like objects/, the manifest stored under its snapdir ID.
 */
export class FileStore {
  constructor (readonly root: string) {}

  get url (): string { return `file://${this.root}` }
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

  /** Snapshots whose manifests are here, oldest first (by the manifest file's mtime). */
  async snapshots (): Promise<StoredSnapshot[]> {
    const base = join(this.root, '.manifests')
    let names: string[]
    try {
      names = (await readdir(base, { recursive: true, withFileTypes: true })).filter(e => e.isFile()).map(e => join(e.parentPath, e.name))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const found: StoredSnapshot[] = []
    for (const path of names) {
      const id = path.slice(base.length + 1).split('/').join('')
      if (/^[0-9a-f]{64}$/.test(id)) found.push({ id, at: (await stat(path)).mtime })
    }
    return found.sort((a, b) => a.at.getTime() - b.at.getTime() || a.id.localeCompare(b.id))
  }
}
