import { randomUUID } from 'node:crypto'
import { join } from 'node:path'

/** Paths inside a data directory (DESIGN.md "on disk"). */
export class StoreLayout {
  readonly objects: string
  readonly partial: string
  readonly tmp: string
  readonly db: string

  constructor (readonly root: string) {
    this.objects = join(root, 'objects')
    this.partial = join(root, 'partial')
    this.tmp = join(root, 'tmp')
    this.db = join(root, 'db')
  }

  objectPath (hash: string): string {
    return join(this.objects, ...shardHash(hash))
  }

  partialPath (hash: string): string {
    return join(this.partial, hash)
  }

  /**
   * A fresh name in tmp/ (wiped when the store opens, so a crash leaves nothing behind):
   * `<kind>-<id>`, the id a random UUID unless the caller has its own (an upload session's).
   */
  stagingPath (kind: string, id: string = randomUUID()): string {
    return join(this.tmp, `${kind}-${id}`)
  }
}

/** snapdir's sharding: `abc/def/012/3456…`, so no directory grows huge. */
export function shardHash (hash: string): [string, string, string, string] {
  return [hash.slice(0, 3), hash.slice(3, 6), hash.slice(6, 9), hash.slice(9)]
}
