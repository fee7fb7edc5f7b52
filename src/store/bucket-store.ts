import { BucketError, openBucket, type BucketClient, type BucketClientInit } from '../bucket/index.js'
import { blake3Hex, createBlake3 } from '../hash/index.js'
import { MAX_MANIFEST_BYTES, snapdirId } from '../manifest/index.js'
import { bytePieces } from './byte-pieces.js'
import { BUCKET_PARTS_IN_FLIGHT, BUCKET_PART_BYTES, SPARE_PARTS_KEPT } from './constants.js'
import { SourceObjectCorruptError, StoreError } from './errors.js'
import { shardHash } from './layout.js'
import { Slots } from './slots.js'
import { UploadJournal, type UploadState } from './upload-journal.js'

export interface BucketStoreInit {
  /** Where unfinished multipart uploads are remembered between runs (see UploadJournal). */
  journalDir: string
  /** Objects larger than this go up in parts of this size (S3's minimum part is 5 MiB). */
  partBytes?: number
  /** Part uploads in flight across the whole store: bounds memory at about (this + readers) × partBytes. */
  partsInFlight?: number
}

/** What one object upload did: parts a rerun found already landed are not sent again. */
export interface PutReport { sentBytes: number, resumedBytes: number }

export interface StoredSnapshot { id: string, at: Date }

/**
 * A store in snapdir's layout in a bucket (`s3://BUCKET/PREFIX`, `gs://…`), the keys its
 * `snapdir-s3-store` writes: `PREFIX/.objects/abc/def/ghi/<rest>` for each object under its
 * BLAKE3, `PREFIX/.manifests/…` the same for each manifest under its snapdir ID, objects first
 * and the manifest last, so a manifest that is there names objects that are there.
 *
 * Nothing partial is ever visible under a final key: an object up to one part is verified in
 * memory and sent in one PUT (atomic in S3); a larger one goes up as a multipart upload that is
 * completed only after every byte hashed to its name, and aborted otherwise.
 */
export class BucketStore {
  readonly url: string
  readonly partBytes: number
  private readonly partSlots: Slots
  private readonly journal: UploadJournal
  /**
   * Part buffers given back once their PUT is done and reused: a sync moves gigabytes through
   * a handful of them, instead of leaving each to the garbage collector (which let the peak RSS
   * run ~60 MB above what was live).
   */
  private readonly spareParts: Buffer[] = []

  /** Opens `s3://…` or `gs://…` with the configuration in `env`, and checks the bucket answers. */
  static async open (spec: string, env: NodeJS.ProcessEnv, init: BucketStoreInit & BucketClientInit & { signal?: AbortSignal }): Promise<BucketStore> {
    const { client, prefix } = await openBucket(spec, env, init)
    const store = new BucketStore(client, prefix, init)
    try {
      await store.check({ signal: init.signal })
    } catch (err) {
      store.close()
      throw err
    }
    return store
  }

  constructor (readonly client: BucketClient, readonly prefix: string, init: BucketStoreInit) {
    this.url = client.where(prefix === '' ? undefined : prefix)
    this.partBytes = init.partBytes ?? BUCKET_PART_BYTES
    this.partSlots = new Slots(init.partsInFlight ?? BUCKET_PARTS_IN_FLIGHT)
    this.journal = new UploadJournal(init.journalDir)
  }

  private takePart = (bytes: number): Buffer => {
    if (bytes !== this.partBytes) return Buffer.allocUnsafe(bytes)
    return this.spareParts.pop() ?? Buffer.allocUnsafe(bytes)
  }

  private giveBack (piece: Buffer): void {
    // Only whole part buffers return (a last piece is a subarray of one, or a smaller buffer).
    if (piece.byteOffset === 0 && piece.buffer.byteLength >= this.partBytes && this.spareParts.length < SPARE_PARTS_KEPT) {
      this.spareParts.push(Buffer.from(piece.buffer, 0, this.partBytes))
    }
  }

  private key (relative: string): string { return this.prefix === '' ? relative : `${this.prefix}/${relative}` }
  objectKey (hash: string): string { return this.key(`.objects/${shardHash(hash).join('/')}`) }
  manifestKey (id: string): string { return this.key(`.manifests/${shardHash(id).join('/')}`) }
  objectWhere (hash: string): string { return this.client.where(this.objectKey(hash)) }

  /** A listing of one key: a missing bucket or refused credentials show here, before any work. */
  async check (options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.client.checkBucket(this.key(''), options)
  }

  close (): void { this.client.close() }

  /** Present with the right size (a HEAD, as snapdir's push compares sizes only). */
  async hasObject (hash: string, size: number, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const head = await this.client.head(this.objectKey(hash), options)
    return head !== undefined && head.size === size
  }

  /** The size of an object in the bucket (a HEAD); a missing one is named with its key. */
  async objectSize (hash: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    const head = await this.client.head(this.objectKey(hash), options)
    if (head === undefined) throw new StoreError('OBJECT_MISSING', `${this.objectWhere(hash)} does not exist, but the snapshot's manifest names it; the store is incomplete`)
    return head.size
  }

  async hasManifest (id: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    return await this.client.head(this.manifestKey(id), options) !== undefined
  }

  async readManifest (id: string, options: { signal?: AbortSignal } = {}): Promise<string> {
    const where = this.client.where(this.manifestKey(id))
    const chunks: Buffer[] = []
    let size = 0
    try {
      for await (const chunk of this.client.read(this.manifestKey(id), options)) {
        size += chunk.length
        if (size > MAX_MANIFEST_BYTES) throw new StoreError('MANIFEST_CORRUPT', `${where} is over ${MAX_MANIFEST_BYTES} bytes; no manifest is that large`)
        chunks.push(chunk)
      }
    } catch (err) {
      if (err instanceof BucketError && err.code === 'BUCKET_KEY_NOT_FOUND') throw new StoreError('MANIFEST_NOT_FOUND', `no snapshot ${id} in ${this.url} (${where} does not exist)`, { cause: err })
      throw err
    }
    const text = Buffer.concat(chunks).toString('utf8')
    const actual = snapdirId(text)
    if (actual !== id) throw new StoreError('MANIFEST_CORRUPT', `${where} hashes to ${actual}, not ${id}; the manifest in the bucket is damaged`)
    return text
  }

  /** Stored as snapdir stores it: the text with one final newline, under its snapdir ID. */
  async writeManifest (text: string, options: { signal?: AbortSignal } = {}): Promise<string> {
    const body = Buffer.from(text.replace(/\n*$/, '\n'))
    const id = blake3Hex(body)
    await this.client.put(this.manifestKey(id), body, options)
    return id
  }

  /** The object's bytes as the bucket sends them; the reader verifies them. */
  readObject (hash: string, options: { signal?: AbortSignal } = {}): AsyncIterable<Buffer> {
    return this.client.read(this.objectKey(hash), options)
  }

  /** Snapshots whose manifests are in the store, oldest first (by the bucket's LastModified). */
  async snapshots (options: { signal?: AbortSignal } = {}): Promise<StoredSnapshot[]> {
    const base = this.key('.manifests/')
    const found: StoredSnapshot[] = []
    for await (const listed of this.client.list(base, options)) {
      const id = listed.key.slice(base.length).split('/').join('')
      if (/^[0-9a-f]{64}$/.test(id)) found.push({ id, at: listed.lastModified })
    }
    return found.sort((a, b) => a.at.getTime() - b.at.getTime() || a.id.localeCompare(b.id))
  }

  /**
   * Uploads object `hash` of `size` bytes from `open()`'s stream, verifying it on the way.
   * `open` may be called again when the bucket forgot an unfinished upload.
   */
  async putObject (hash: string, size: number, open: () => AsyncIterable<Uint8Array>, options: { signal?: AbortSignal, from?: string } = {}): Promise<PutReport> {
    const key = this.objectKey(hash)
    const where = this.client.where(key)
    const from = options.from ?? 'the source'
    if (size <= this.partBytes) {
      const whole = size === 0 ? Buffer.alloc(0) : await single(bytePieces(open(), this.partBytes, size, { hash, where: from }, this.takePart))
      try {
        const actual = blake3Hex(whole)
        if (actual !== hash) throw new SourceObjectCorruptError(hash, from, `hashes to ${actual}`)
        await this.partSlots.acquire(options.signal)
        try {
          await this.client.put(key, whole, { signal: options.signal })
        } finally {
          this.partSlots.release()
        }
      } finally {
        this.giveBack(whole)
      }
      return { sentBytes: size, resumedBytes: 0 }
    }
    try {
      return await this.putMultipart(hash, size, key, open, from, options.signal)
    } catch (err) {
      if (!(err instanceof BucketError && err.code === 'BUCKET_UPLOAD_NOT_FOUND')) throw err
      // The bucket dropped the unfinished upload (expired or aborted elsewhere): start it anew.
      await this.journal.remove(where)
      return await this.putMultipart(hash, size, key, open, from, options.signal)
    }
  }

  private async putMultipart (hash: string, size: number, key: string, open: () => AsyncIterable<Uint8Array>, from: string, signal: AbortSignal | undefined): Promise<PutReport> {
    const where = this.client.where(key)
    let state = await this.journal.load(where)
    if (state !== undefined && (state.hash !== hash || state.size !== size || state.partSize !== this.partBytes)) state = undefined
    if (state === undefined) {
      state = { uploadId: await this.client.createMultipart(key, { signal }), hash, size, partSize: this.partBytes, parts: {} }
      await this.journal.save(where, state)
    }
    const upload: UploadState = state
    const report: PutReport = { sentBytes: 0, resumedBytes: 0 }
    const whole = createBlake3()
    const inFlight = new Set<Promise<void>>()
    let failure: { error: unknown } | undefined
    let parts = 0
    try {
      for await (const piece of bytePieces(open(), this.partBytes, size, { hash, where: from }, this.takePart)) {
        if (failure !== undefined) {
          this.giveBack(piece)
          break
        }
        const partNumber = ++parts
        whole.update(piece)
        const digest = blake3Hex(piece)
        const landed = upload.parts[partNumber]
        if (landed !== undefined && landed.blake3 === digest && landed.size === piece.length) {
          report.resumedBytes += piece.length
          this.giveBack(piece)
          continue
        }
        try {
          await this.partSlots.acquire(signal)
        } catch (err) {
          this.giveBack(piece)
          throw err
        }
        const sending = (async () => {
          try {
            const etag = await this.client.uploadPart(key, upload.uploadId, partNumber, piece, { signal })
            upload.parts[partNumber] = { etag, blake3: digest, size: piece.length }
            report.sentBytes += piece.length
            await this.journal.save(where, upload)
          } finally {
            this.partSlots.release()
            this.giveBack(piece)
          }
        })().catch((error: unknown) => { failure ??= { error } })
        inFlight.add(sending)
        void sending.finally(() => inFlight.delete(sending))
      }
    } catch (err) {
      failure ??= { error: err }
    } finally {
      await Promise.all(inFlight)
    }
    if (failure !== undefined) {
      // A source that is not what its name says will never be: drop the upload. Anything else
      // (a broken connection, a kill) keeps it, so the rerun sends only the missing parts.
      if (failure.error instanceof SourceObjectCorruptError) await this.forget(key, upload)
      throw failure.error
    }
    const actual = whole.digestHex()
    if (actual !== hash) {
      await this.forget(key, upload)
      throw new SourceObjectCorruptError(hash, from, `hashes to ${actual}`)
    }
    const completed = Array.from({ length: parts }, (_, i) => ({ partNumber: i + 1, etag: upload.parts[i + 1]!.etag }))
    await this.client.completeMultipart(key, upload.uploadId, completed, { signal })
    await this.journal.remove(where)
    return report
  }

  private async forget (key: string, upload: UploadState): Promise<void> {
    await this.client.abortMultipart(key, upload.uploadId).catch(() => {})
    await this.journal.remove(this.client.where(key))
  }
}

async function single (pieces: AsyncIterable<Buffer>): Promise<Buffer> {
  let only: Buffer | undefined
  for await (const piece of pieces) only = piece
  if (only === undefined) throw new StoreError('OBJECT_CORRUPT', 'an object read as empty')
  return only
}
