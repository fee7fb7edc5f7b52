import { Level } from 'level'
import type { RefRevision, RefTarget } from './types.js'

/** Per-bundle facts that are not in its manifest. */
export interface BundleRecord {
  createdAt: number
  lastUsedAt: number
  pinned: boolean
  snapdirId: string
}

/**
 * The newest preheat record held for a bundle (signed bytes as they travel, base64) and what
 * this node did about it: `released` when its operator unpinned the bundle since (`shoal
 * unpin`), so a restart does not pin it again until a newer record asks.
 */
export interface PreheatEntry {
  sequence: number
  cancelled: boolean
  signed: string
  released: boolean
}

/** A partial object: its size and which chunks are verified and written. */
export interface PartialRecord {
  size: number
  bitmap: Uint8Array
}

type Batch = ReturnType<Level<string, Uint8Array>['batch']>

/**
 * Everything but object bytes, in LevelDB. Keys are `<kind>!<key>`; values are JSON except
 * bundle manifests (their exact bytes: the bundle ID is their hash).
 */
export class Metadata {
  private constructor (private readonly db: Level<string, Uint8Array>) {}

  static async open (path: string): Promise<Metadata> {
    const db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' })
    await db.open()
    return new Metadata(db)
  }

  async close (): Promise<void> { await this.db.close() }

  batch (): Batch { return this.db.batch() }

  async getBundleBytes (id: string): Promise<Uint8Array | undefined> { return await this.db.get(`bundle!${id}`) }
  async getBundleRecord (id: string): Promise<BundleRecord | undefined> { return await this.getJson<BundleRecord>(`bmeta!${id}`) }
  async putBundleRecord (id: string, record: BundleRecord): Promise<void> { await this.putJson(`bmeta!${id}`, record) }
  async bundleIds (): Promise<string[]> { return await this.keysUnder('bmeta!') }

  addBundle (batch: Batch, id: string, encoded: Uint8Array, record: BundleRecord): void {
    batch.put(`bundle!${id}`, encoded)
    batch.put(`bmeta!${id}`, json(record))
    batch.put(`snapdir!${record.snapdirId}`, Buffer.from(id))
  }

  removeBundle (batch: Batch, id: string, record: BundleRecord): void {
    batch.del(`bundle!${id}`)
    batch.del(`bmeta!${id}`)
    batch.del(`snapdir!${record.snapdirId}`)
  }

  async bundleIdBySnapdirId (snapdirId: string): Promise<string | undefined> {
    const value = await this.db.get(`snapdir!${snapdirId}`)
    return value === undefined ? undefined : Buffer.from(value).toString()
  }

  indexSha256 (batch: Batch, sha256: string, object: string): void { batch.put(`sha256!${sha256}`, Buffer.from(object)) }
  async objectBySha256 (sha256: string): Promise<string | undefined> {
    const value = await this.db.get(`sha256!${sha256}`)
    return value === undefined ? undefined : Buffer.from(value).toString()
  }

  async sha256Entries (): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = []
    for await (const [key, value] of this.db.iterator({ gte: 'sha256!', lt: 'sha256!~' })) out.push([key.slice(7), Buffer.from(value).toString()])
    return out
  }

  dropSha256 (batch: Batch, sha256: string): void { batch.del(`sha256!${sha256}`) }

  async getPartial (object: string): Promise<PartialRecord | undefined> {
    const value = await this.db.get(`partial!${object}`)
    if (value === undefined) return undefined
    const view = Buffer.from(value)
    return { size: Number(view.readBigUInt64BE(0)), bitmap: Uint8Array.from(view.subarray(8)) }
  }

  setPartial (batch: Batch, object: string, record: PartialRecord): void {
    batch.put(`partial!${object}`, encodePartial(record))
  }

  async deletePartial (object: string): Promise<void> { await this.db.del(`partial!${object}`) }
  async partialObjects (): Promise<string[]> { return await this.keysUnder('partial!') }

  async getRef (name: string): Promise<RefTarget | undefined> { return await this.getJson<RefTarget>(`ref!${name}`) }
  async refNames (): Promise<string[]> { return await this.keysUnder('ref!') }
  /** Every ref with what it names (heard-refs.ts reads them once to index records from others). */
  async refTargets (): Promise<Array<[string, RefTarget]>> {
    const out: Array<[string, RefTarget]> = []
    for await (const [key, value] of this.db.iterator({ gte: 'ref!', lt: 'ref!\xff' })) out.push([key.slice('ref!'.length), parseJson<RefTarget>(value)])
    return out
  }

  setRef (batch: Batch, revision: RefRevision): void {
    const target: RefTarget = { bundleId: revision.bundleId, manifestDigest: revision.manifestDigest, sequence: revision.sequence, publisher: revision.publisher, local: revision.local }
    batch.put(`ref!${revision.ref}`, json(target))
    // Zero-padded time keeps a ref's history in order under LevelDB's byte ordering.
    batch.put(`refhist!${revision.ref}!${String(revision.at).padStart(16, '0')}!${revision.bundleId}`, json(revision))
  }

  deleteRef (batch: Batch, name: string): void {
    batch.del(`ref!${name}`)
    batch.del(`refrec!${name}`)
  }

  /** The keys of a ref's history, oldest first. */
  async revisionKeys (name: string): Promise<string[]> {
    const prefix = `refhist!${name}!`
    const out: string[] = []
    for await (const key of this.db.keys({ gte: prefix, lt: prefix + '\xff' })) out.push(key)
    return out
  }

  deleteRevisions (batch: Batch, keys: string[]): void {
    for (const key of keys) if (key.startsWith('refhist!')) batch.del(key)
  }

  putRefRecord (batch: Batch, name: string, signed: Uint8Array): void { batch.put(`refrec!${name}`, signed) }

  async refRecords (): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    for await (const value of this.db.values({ gte: 'refrec!', lt: 'refrec!\xff' })) out.push(value)
    return out
  }

  async getPreheat (bundleId: string): Promise<PreheatEntry | undefined> { return await this.getJson<PreheatEntry>(`preheat!${bundleId}`) }
  async putPreheat (bundleId: string, entry: PreheatEntry): Promise<void> { await this.putJson(`preheat!${bundleId}`, entry) }
  async deletePreheat (bundleId: string): Promise<void> { await this.db.del(`preheat!${bundleId}`) }
  async preheatEntries (): Promise<Array<[string, PreheatEntry]>> {
    const out: Array<[string, PreheatEntry]> = []
    for await (const [key, value] of this.db.iterator({ gte: 'preheat!', lt: 'preheat!\xff' })) out.push([key.slice('preheat!'.length), parseJson<PreheatEntry>(value)])
    return out
  }

  async revisions (name?: string): Promise<RefRevision[]> {
    const prefix = name === undefined ? 'refhist!' : `refhist!${name}!`
    const out: RefRevision[] = []
    for await (const value of this.db.values({ gte: prefix, lt: prefix + '\xff' })) out.push(parseJson<RefRevision>(value))
    return out
  }

  private async keysUnder (prefix: string): Promise<string[]> {
    const out: string[] = []
    for await (const key of this.db.keys({ gte: prefix, lt: prefix + '\xff' })) out.push(key.slice(prefix.length))
    return out
  }

  private async getJson<T> (key: string): Promise<T | undefined> {
    const value = await this.db.get(key)
    return value === undefined ? undefined : parseJson<T>(value)
  }

  private async putJson (key: string, value: unknown): Promise<void> { await this.db.put(key, json(value)) }
}

function encodePartial (record: PartialRecord): Uint8Array {
  const value = Buffer.alloc(8 + record.bitmap.length)
  value.writeBigUInt64BE(BigInt(record.size), 0)
  value.set(record.bitmap, 8)
  return value
}

function json (value: unknown): Uint8Array { return Buffer.from(JSON.stringify(value)) }
function parseJson<T> (value: Uint8Array): T { return JSON.parse(Buffer.from(value).toString()) as T }
