import { EventEmitter } from 'node:events'
import { mkdir, mkdtemp, open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { blake3Hex, sha256Hex } from '../hash/index.js'
import {
  bundleIdOf, bundleObjects, ChunkBitmap, chunkCount, chunkHashes, CHUNK_SIZE_BYTES, decodeBundleManifest, snapdirId,
  type BundleManifest,
} from '../manifest/index.js'
import { BUNDLE_CACHE_ENTRIES, DIRECT_IO_SLAB_BUFFERS, MAX_DIRECT_READ_OBJECTS, MAX_LENT_READ_BUFFERS, OBJECT_STATE_CONCURRENCY, VERIFIED_CHUNK_TABLES, MAX_HEARD_REF_REVISIONS, MAX_PREHEAT_RECORDS } from './constants.js'
import { HeardRefs, type HeardRefBounds, type HeardRefEviction } from './heard-refs.js'
import { PreheatRecords, type PreheatRecordUpdate } from './preheat-records.js'
import {
  BundleNotFoundError, ChunkHashMismatchError, ChunkNotPresentError, NoRoomError, ObjectUnknownError, OverQuotaError, StoreLockedError, StoreNotFoundError,
} from './errors.js'
import { BundlesByObject } from './bundles-by-object.js'
import { KeyedLock } from './keyed-lock.js'
import { diskFreeBytes } from './disk-room.js'
import { GrowingFile, type GrowingFileReader } from './growing-file.js'
import { evictOverQuota, quotaWouldFree, underQuotaLock } from './gc.js'
import { StoreLayout } from './layout.js'
import { Metadata, type BundleRecord } from './metadata.js'
import { AlignedBuffers, DirectIoMode, directIoWorks } from './direct-io.js'
import { ObjectReaders } from './object-readers.js'
import { fileExists, fileSize, publishObject, readAt, readSmallFile, removeQuietly, writeAt } from './object-files.js'
import { PartialObjects } from './partial-objects.js'
import { forEachLimited } from './slots.js'
import type { BundleSummary, ChunkWriteResult, KeepBytes, ObjectState, ReadOptions, RefRevision, RefTarget, SignedRefUpdate, StoreEvents } from './types.js'
import { RecentMap, RecentSet } from '../recent/index.js'

export interface StoreInit {
  dir: string
  /** Evict least recently used unpinned bundles when objects exceed this many bytes. */
  quotaBytes?: number
  /** fsync object data before it becomes visible (default true). */
  fsync?: boolean
  /**
   * Write the chunks of pulled objects with O_DIRECT, past the page cache (default false), where
   * the data directory's filesystem takes it; `Store.directIo` says what came of it.
   */
  directIo?: boolean
  /**
   * Create the store when it is not there (default true). Read-only commands pass false, so
   * a mistyped --data is reported instead of leaving an empty store behind.
   */
  create?: boolean
  signal?: AbortSignal
}

/** A decoded bundle with its object sizes at hand, for chunk writes. */
export interface LoadedBundle {
  id: string
  manifest: BundleManifest
  objectSizes: Map<string, number>
}

const BLOB_PATH = /^\.\/blobs\/sha256\/([0-9a-f]{64})$/

/**
 * The on-disk store (DESIGN.md "on disk"): verified objects under objects/, partial
 * objects under partial/ with their chunk bitmaps in LevelDB, everything else in LevelDB.
 * It knows nothing of the network; the swarm and the HTTP API use it.
 */
export class Store {
  readonly layout: StoreLayout
  readonly meta: Metadata
  readonly quotaBytes: number | undefined
  private readonly bundlesInUse = new Map<string, number>()
  /** Bundles a client read lately, and until when they count as in use (`useBundle`'s grace). */
  private readonly bundlesUsedUntil = new Map<string, number>()
  readonly fsync: boolean
  private readonly events = new EventEmitter()
  /** Serialises writes of one single-chunk object (they share a staging name). */
  private readonly objectLock = new KeyedLock()
  // A ref's record is read, compared and written back: the same record arriving from two
  // neighbours at once must not land twice in the ref's history.
  private readonly refLock = new KeyedLock()
  /** Refs set by signed records, indexed on the first bound checked (heard-refs.ts). */
  private heardRefs: Promise<HeardRefs> | undefined
  /** Refs heard from other publishers evicted past their bound since the store opened. */
  heardRefsEvicted = 0
  private readonly partials: PartialObjects
  private readonly readers: ObjectReaders
  /** Staging files written with O_DIRECT, until they become objects (`stagedObject`). */
  private readonly directStaged = new RecentSet<string>(MAX_DIRECT_READ_OBJECTS)
  private readonly bundleCache = new RecentMap<string, LoadedBundle>(BUNDLE_CACHE_ENTRIES)
  /** Which bundles name each object and each bundle's bytes, built on the first question (bundleIndex), then kept in step. */
  private bundlesByObject: Promise<BundlesByObject> | undefined
  /** Chunk tables of objects completed here from verified chunks (verifiedChunkTable). */
  private readonly verifiedChunkTables = new RecentMap<string, string[]>(VERIFIED_CHUNK_TABLES)
  /** Objects no bundle names yet but that must survive gc for a while (blobs of a push in progress). */
  private readonly leases = new Map<string, number>()
  private readonly preheats: PreheatRecords

  private readonly directIoMode: DirectIoMode
  /** Chunk-sized aligned memory: bounces for direct reads and writes, and lent to readers. */
  private readonly aligned = new AlignedBuffers(CHUNK_SIZE_BYTES, DIRECT_IO_SLAB_BUFFERS)
  private lentReadBuffers = 0

  private constructor (layout: StoreLayout, meta: Metadata, init: StoreInit, directIo: { on: boolean, refused?: string }) {
    this.layout = layout
    this.meta = meta
    this.quotaBytes = init.quotaBytes
    this.fsync = init.fsync ?? true
    this.directIoMode = new DirectIoMode(directIo.on, directIo.refused, refusal => { this.emit('direct-io:refused', refusal) })
    const aligned = this.aligned
    this.readers = new ObjectReaders(hash => layout.objectPath(hash), { directIo: { mode: this.directIoMode, aligned } })
    this.partials = new PartialObjects({
      layout,
      meta,
      emit: (event, detail) => { this.emit(event, detail) },
      published: (hash, direct, chunkHashes) => {
        if (direct) this.readers.readDirect(hash)
        if (chunkHashes !== undefined) this.noteChunkTable(hash, chunkHashes)
      },
    }, { fsync: this.fsync, directIo: this.directIoMode, aligned })
    this.preheats = new PreheatRecords(meta, MAX_PREHEAT_RECORDS)
  }

  static async open (init: StoreInit): Promise<Store> {
    const layout = new StoreLayout(init.dir)
    if (init.create === false && !await fileExists(join(layout.db, 'CURRENT'))) throw new StoreNotFoundError(init.dir)
    for (const dir of [layout.objects, layout.partial, layout.db]) await mkdir(dir, { recursive: true })
    let meta: Metadata
    try {
      meta = await Metadata.open(layout.db)
    } catch (err) {
      if (String((err as Error & { cause?: Error }).cause?.message ?? '').includes('lock')) throw new StoreLockedError(init.dir, { cause: err })
      throw err
    }
    // LevelDB's lock makes us the only writer, so whatever is in tmp/ is from a crash.
    await removeQuietly(layout.tmp)
    await mkdir(layout.tmp, { recursive: true })
    let directIo: { on: boolean, refused?: string } = { on: false }
    if (init.directIo === true) {
      const probe = await directIoWorks(layout.tmp).catch(async (err: unknown) => {
        await meta.close()
        throw err
      })
      directIo = probe.works ? { on: true } : { on: false, refused: probe.reason }
    }
    const store = new Store(layout, meta, init, directIo)
    await store.dropFinishedPartials()
    return store
  }

  async close (): Promise<void> {
    await this.partials.close()
    await this.readers.close()
    await this.meta.close()
  }

  on<E extends keyof StoreEvents> (event: E, listener: (detail: StoreEvents[E]) => void): void { this.events.on(event, listener) }
  off<E extends keyof StoreEvents> (event: E, listener: (detail: StoreEvents[E]) => void): void { this.events.off(event, listener) }
  emit<E extends keyof StoreEvents> (event: E, detail: StoreEvents[E]): void { this.events.emit(event, detail) }

  objectPath (hash: string): string { return this.layout.objectPath(hash) }

  // ── files on their way in, and whole objects as files: the layout stays the store's ──

  /** A fresh path under tmp/ for a file on its way into the store (`StoreLayout.stagingPath`); nothing is created. */
  stagingPath (kind: string, id?: string): string { return this.layout.stagingPath(kind, id) }

  /** A fresh directory under tmp/ (a pushed tree unpacked before it is moved in); the caller removes it. */
  async makeStagingDir (kind: string): Promise<string> { return await mkdtemp(this.layout.stagingPath(kind, '')) }

  /**
   * A new staging file that readers follow as it fills (a blob streamed in from an upstream or
   * the fleet), `size` bytes long when known. Such a size is checked before the file exists, as
   * a pull's is: over the quota, OverQuotaError (it could never be held within it); more than
   * the disk has free, room made by the quota's eviction where that frees enough, else
   * NoRoomError (naming `what`). Of no known size, it is cut with OverQuotaError where it
   * passes the quota.
   */
  async createStagingFile (kind: string, size: number | undefined, what: string): Promise<GrowingFile> {
    if (size !== undefined) {
      this.requireWithinQuota(size, what)
      await this.makeRoom(size, what)
    }
    const quota = this.quotaBytes
    // Of no known size, it may still not pass the quota: cut there, as one that said so is refused.
    const limit = size !== undefined || quota === undefined ? undefined : { bytes: quota, refusal: (bytes: number) => new OverQuotaError(`${what} (of no size given: cut where it passed the quota)`, bytes, quota) }
    // Past the page cache as pulled chunks are, while the store's O_DIRECT mode is on (direct-staging-bytes.ts).
    const file = await GrowingFile.create(this.layout.stagingPath(kind), size, limit, { mode: this.directIoMode, aligned: this.aligned })
    if (file.direct) this.directStaged.add(file.path)
    return file
  }

  /**
   * The staging file at `stagedPath` became object `hash` (ingestBlobFile). One written past the
   * page cache is read past it too, as a pulled object is (object-readers.ts `readDirect`): its
   * first reads (a neighbour's chunks, containerd's response) would otherwise fill cold
   * page-cache pages, the kernel's copy out of them costing a gateway ~1.1 CPU-s on libuv's pool
   * for the first neighbour served 512 MiB (docs/architecture.md, "The holder's first serve").
   */
  stagedObject (stagedPath: string, hash: string): void {
    if (this.directStaged.delete(stagedPath)) this.readers.readDirect(hash)
  }

  /** A complete object read as a staging file is (a GrowingFileReader); ENOENT when it is not here whole. */
  async wholeObjectReader (hash: string): Promise<GrowingFileReader> {
    return (await GrowingFile.whole(this.objectPath(hash))).reader()
  }

  /**
   * A complete object's open file, or undefined when it is not here whole. Opened before it is
   * sized, so a gc that runs meanwhile cannot take it from under the reader.
   */
  async openObject (hash: string): Promise<FileHandle | undefined> {
    try {
      return await open(this.objectPath(hash), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  /**
   * Whether pulled chunks are written with O_DIRECT now; when asked for but refused (by the
   * probe at open, or by the filesystem later: then 'direct-io:refused' was emitted), why.
   */
  get directIo (): { on: boolean, refused?: string } {
    const { on, refused } = this.directIoMode
    return refused === undefined ? { on } : { on, refused }
  }

  /** Keeps an unreferenced object from gc for `ms` (a registry push uploads blobs before its manifest). */
  leaseObject (hash: string, ms: number): void {
    this.leases.set(hash, Math.max(this.leases.get(hash) ?? 0, Date.now() + ms))
  }

  isLeased (hash: string): boolean {
    const until = this.leases.get(hash)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.leases.delete(hash)
    return false
  }

  /** Refuses (OVER_QUOTA) something of `bytes` that could never be held within the quota, before anything of it is written. */
  requireWithinQuota (bytes: number, what: string): void {
    if (this.quotaBytes !== undefined && bytes > this.quotaBytes) throw new OverQuotaError(what, bytes, this.quotaBytes)
  }

  async hasObject (hash: string): Promise<boolean> { return await fileExists(this.objectPath(hash)) }

  // ── bundles ──────────────────────────────────────────────────────────────

  async getEncodedBundle (id: string): Promise<Uint8Array | undefined> {
    return await this.meta.getBundleBytes(id)
  }

  async getBundle (id: string): Promise<BundleManifest | undefined> {
    return (await this.loadBundle(id))?.manifest
  }

  async loadBundle (id: string): Promise<LoadedBundle | undefined> {
    const cached = this.bundleCache.get(id)
    if (cached !== undefined) return cached
    const encoded = await this.meta.getBundleBytes(id)
    if (encoded === undefined) return undefined
    const manifest = decodeBundleManifest(encoded)
    const loaded: LoadedBundle = { id, manifest, objectSizes: new Map(bundleObjects(manifest).map(o => [o.hash, o.size])) }
    this.bundleCache.set(id, loaded)
    return loaded
  }

  async requireBundle (id: string): Promise<LoadedBundle> {
    const loaded = await this.loadBundle(id)
    if (loaded === undefined) throw new BundleNotFoundError(id)
    return loaded
  }

  /**
   * Records a bundle manifest received from elsewhere; its objects may all be missing yet.
   * Bytes that do not hash to `expectedId` are refused before anything is written.
   */
  async addBundle (encoded: Uint8Array, options: { expectedId?: string, signal?: AbortSignal } = {}): Promise<{ id: string, bundle: BundleManifest }> {
    const manifest = decodeBundleManifest(encoded, { expectedId: options.expectedId })
    const id = options.expectedId ?? bundleIdOf(encoded)
    if (await this.meta.getBundleRecord(id) === undefined) {
      // A pull of a bundle larger than the quota could only fill the store and then lose
      // the bundle (or everything else) to eviction: refused before its manifest is kept.
      this.requireWithinQuota(bundleObjects(manifest).reduce((sum, o) => sum + o.size, 0), `bundle ${id}`)
      await this.commitBundle(id, Buffer.from(encoded), manifest, [])
      await this.materializeEmptyObjects(manifest)
    }
    return { id, bundle: manifest }
  }

  /** Writes a bundle's records, its sha256 index and refs in one batch: all or nothing. */
  async commitBundle (id: string, encoded: Uint8Array, manifest: BundleManifest, refs: RefRevision[]): Promise<void> {
    const now = Date.now()
    const batch = this.meta.batch()
    this.meta.addBundle(batch, id, encoded, { createdAt: now, lastUsedAt: now, pinned: false, snapdirId: snapdirId(manifest.manifestText) })
    for (const entry of manifest.entries) {
      const blob = BLOB_PATH.exec(entry.path)
      if (entry.type === 'F' && blob?.[1] !== undefined) this.meta.indexSha256(batch, blob[1], entry.checksum)
    }
    // What each ref named before, so a moved tag can be logged with where it came from.
    const previous = await Promise.all(refs.map(async ref => (await this.meta.getRef(ref.ref))?.bundleId))
    for (const ref of refs) this.meta.setRef(batch, ref)
    await batch.write()
    for (const ref of refs) await this.noteRef(ref.ref, ref)
    // Named by a bundle now, its objects need no lease: held, gc keeps them; evicted, the
    // quota must be able to free them (a 1 h lease kept evicted pushes on disk, and the quota
    // evicting everything to make room it could not make).
    for (const object of bundleObjects(manifest)) this.leases.delete(object.hash)
    await this.noteBundleObjects(index => { index.add(id, new Map(bundleObjects(manifest).map(o => [o.hash, o.size]))) })
    this.emit('bundle:added', { id })
    for (const [i, ref] of refs.entries()) this.emit('ref:set', { ref: ref.ref, bundleId: ref.bundleId, manifestDigest: ref.manifestDigest, previous: previous[i], local: ref.local })
  }

  private async materializeEmptyObjects (manifest: BundleManifest): Promise<void> {
    for (const object of bundleObjects(manifest)) {
      if (object.size !== 0 || await this.hasObject(object.hash)) continue
      const staged = this.layout.stagingPath('empty', object.hash)
      await (await open(staged, 'w')).close()
      await publishObject(staged, this.objectPath(object.hash))
    }
  }

  async bundleIds (): Promise<string[]> { return await this.meta.bundleIds() }

  /**
   * The IDs of the bundles whose manifests name `object` (a registry client's blob, a peer's
   * question), from an index built on the first question and kept in step with commits and
   * removals: before it, each question decoded every bundle manifest past the 32 cached.
   */
  async bundlesNaming (object: string): Promise<string[]> {
    return (await this.bundleIndex()).naming(object)
  }

  /**
   * The bundles naming `object` and its size, from the same index: a registry request for a blob
   * still arriving needs both, and read the size from a decoded manifest (past the 32 cached).
   * The size is undefined where the bundles naming it disagree on it (then ask the bundle picked).
   */
  async objectNamed (object: string): Promise<{ bundles: string[], size: number | undefined } | undefined> {
    return (await this.bundleIndex()).named(object)
  }

  /**
   * The bundle naming `object` with the fewest bytes (all its objects' sizes), from the same
   * index, which keeps each bundle's total: no manifest is decoded per question (a fleet peer
   * asking for a base layer 40 bundles share cost 40 loads and sums).
   */
  async smallestBundleNaming (object: string): Promise<{ id: string, bytes: number } | undefined> {
    return (await this.bundleIndex()).smallestNaming(object)
  }

  private async bundleIndex (): Promise<BundlesByObject> {
    this.bundlesByObject ??= this.indexBundlesByObject().catch((err: unknown) => {
      // Built again on the next question rather than failing every one from now on.
      this.bundlesByObject = undefined
      throw err
    })
    return await this.bundlesByObject
  }

  private async indexBundlesByObject (): Promise<BundlesByObject> {
    const index = new BundlesByObject()
    for (const id of await this.bundleIds()) {
      const loaded = await this.loadBundle(id)
      if (loaded !== undefined) index.add(id, loaded.objectSizes)
    }
    return index
  }

  /**
   * A commit or removal applied to the index, when it is built or being built (then once the
   * build is done: a bundle it read before the change is corrected after). Not built: the
   * build will read the manifests as they are then.
   */
  private async noteBundleObjects (change: (index: BundlesByObject) => void): Promise<void> {
    const building = this.bundlesByObject
    if (building === undefined) return
    try {
      change(await building)
    } catch {
      // The build failed (and was dropped): the next question builds it from the manifests.
    }
  }

  async bundleRecord (id: string): Promise<BundleRecord | undefined> { return await this.meta.getBundleRecord(id) }

  async listBundles (): Promise<BundleSummary[]> {
    const refsByBundle = new Map<string, string[]>()
    for (const [name, target] of await this.meta.refTargets()) refsByBundle.set(target.bundleId, [...(refsByBundle.get(target.bundleId) ?? []), name])
    const out: BundleSummary[] = []
    for (const id of await this.bundleIds()) {
      const loaded = await this.requireBundle(id)
      const record = await this.meta.getBundleRecord(id)
      const progress = await this.bundleProgress(loaded)
      out.push({
        id,
        snapdirId: record?.snapdirId ?? snapdirId(loaded.manifest.manifestText),
        objects: loaded.objectSizes.size,
        bytes: progress.bytes,
        presentBytes: progress.presentBytes,
        complete: progress.presentBytes === progress.bytes,
        pinned: record?.pinned ?? false,
        refs: refsByBundle.get(id) ?? [],
        createdAt: record?.createdAt ?? 0,
        lastUsedAt: record?.lastUsedAt ?? 0,
      })
    }
    return out.sort((a, b) => a.createdAt - b.createdAt)
  }

  async bundleProgress (loaded: LoadedBundle): Promise<{ bytes: number, presentBytes: number }> {
    let bytes = 0
    let presentBytes = 0
    for (const [hash, size] of loaded.objectSizes) {
      bytes += size
      const state = await this.objectState(hash)
      if (state.state === 'complete') presentBytes += size
      else if (state.state === 'partial') presentBytes += presentChunkBytes(state.bitmap, size, loaded.manifest.chunkSize)
    }
    return { bytes, presentBytes }
  }

  /**
   * Marks a bundle as in use (a client reading it, a pull writing it) until the returned
   * function is called, and `graceMs` after: the quota never evicts it meanwhile. Uses nest.
   * The grace is for clients whose reads are separate requests (containerd fetches a
   * manifest, then the config, then the layers): between two of them nothing is streaming,
   * yet the next one must still find the bundle.
   */
  useBundle (id: string, options: { graceMs?: number } = {}): () => void {
    this.bundlesInUse.set(id, (this.bundlesInUse.get(id) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.bundlesInUse.get(id) ?? 1) - 1
      if (left <= 0) this.bundlesInUse.delete(id)
      else this.bundlesInUse.set(id, left)
      const graceMs = options.graceMs ?? 0
      if (graceMs > 0) this.bundlesUsedUntil.set(id, Math.max(this.bundlesUsedUntil.get(id) ?? 0, Date.now() + graceMs))
      else if (!this.isBundleInUse(id)) this.emit('bundle:released', { id })
    }
  }

  /** When the next grace of a bundle no longer in use ends (`useBundle`), so the quota can look again then. */
  nextGraceEnd (): number | undefined {
    let next: number | undefined
    for (const [id, until] of this.bundlesUsedUntil) {
      if (!this.bundlesInUse.has(id) && until > Date.now()) next = Math.min(next ?? until, until)
    }
    return next
  }

  isBundleInUse (id: string): boolean {
    if (this.bundlesInUse.has(id)) return true
    const until = this.bundlesUsedUntil.get(id)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.bundlesUsedUntil.delete(id)
    return false
  }

  /** Marks a bundle as used now, for the quota's least-recently-used eviction. */
  async touch (id: string): Promise<void> {
    const record = await this.meta.getBundleRecord(id)
    if (record !== undefined) await this.meta.putBundleRecord(id, { ...record, lastUsedAt: Date.now() })
  }

  async setPinned (id: string, pinned: boolean): Promise<void> {
    const record = await this.meta.getBundleRecord(id)
    if (record === undefined) throw new BundleNotFoundError(id)
    await this.meta.putBundleRecord(id, { ...record, pinned })
  }

  /**
   * Whether the quota may evict this bundle: never a pinned one (a preheat's, or the operator's),
   * nor one in use. One check, here, so every evicting path (the quota keeper, enforceQuota) agrees.
   */
  isEvictable (bundle: Pick<BundleSummary, 'id' | 'pinned'>): boolean {
    return !bundle.pinned && !this.isBundleInUse(bundle.id)
  }

  // ── preheat records (signed intents: this node should hold and pin a bundle) ──

  async acceptPreheatRecord (update: PreheatRecordUpdate): Promise<'accepted' | 'stale' | 'full'> { return await this.preheats.accept(update) }
  /** Every signed preheat record held, to hand to neighbours and to resume after a restart. */
  async preheatRecords (): Promise<Uint8Array[]> { return await this.preheats.signed() }
  /** The operator unpinned a preheated bundle: the held record no longer pins it here (until a newer one). */
  async releasePreheat (bundleId: string): Promise<boolean> { return await this.preheats.release(bundleId) }
  async isPreheatReleased (bundleId: string): Promise<boolean> { return await this.preheats.isReleased(bundleId) }

  /** Drops a bundle and the refs that point at it; its objects go at the next gc. */
  async removeBundleRecord (id: string): Promise<void> {
    const record = await this.meta.getBundleRecord(id)
    if (record === undefined) throw new BundleNotFoundError(id)
    await this.dropBundle(id, record, await this.refsNaming(id))
  }

  /** The refs that point at bundle `id` (one scan of the refs). */
  private async refsNaming (id: string): Promise<string[]> {
    return (await this.meta.refTargets()).filter(([, target]) => target.bundleId === id).map(([name]) => name)
  }

  /**
   * Takes back what a pull stopped before its first chunk added (BUNDLE_NOT_WANTED: a peer named
   * the bundle for a tag whose manifest it does not hold): its description, and the sha256 entries
   * it filed that still name an object nothing else names, holds or leases. Not when anything
   * else holds the bundle: pinned, named by a ref (a signed record's, a push's, a local one) or by
   * a preheat record not cancelled, or in use (the operator's `shoal pull`, a preheat, a client,
   * an export). Refs are never touched: one that lands meanwhile keeps naming the bundle, whose
   * description its pull fetches again. Returns 'removed', or what held it.
   */
  async dropStoppedBundle (id: string): Promise<'removed' | 'gone already' | 'pinned' | 'in use' | 'a preheat record' | 'a ref'> {
    const [loaded, record] = await Promise.all([this.loadBundle(id), this.meta.getBundleRecord(id)])
    if (loaded === undefined || record === undefined) return 'gone already'
    if (record.pinned) return 'pinned'
    if (this.isBundleInUse(id)) return 'in use'
    if (await this.preheats.asksFor(id)) return 'a preheat record'
    if ((await this.refsNaming(id)).length > 0) return 'a ref'
    await this.dropBundle(id, record, [])
    const filed: Array<[string, string]> = []
    for (const entry of loaded.manifest.entries) {
      const blob = BLOB_PATH.exec(entry.path)?.[1]
      if (entry.type !== 'F' || blob === undefined || await this.meta.objectBySha256(blob) !== entry.checksum) continue
      if (this.isLeased(entry.checksum) || (await this.objectState(entry.checksum)).state !== 'missing' || (await this.bundlesNaming(entry.checksum)).length > 0) continue
      filed.push([blob, entry.checksum])
    }
    // Read again just before the batch: an entry written since (a blob ingested under that digest) stays.
    const still = await Promise.all(filed.map(async ([blob, object]) => await this.meta.objectBySha256(blob) === object))
    const batch = this.meta.batch()
    for (const [i, [blob]] of filed.entries()) if (still[i] === true) this.meta.dropSha256(batch, blob)
    await batch.write()
    return 'removed'
  }

  /** Removes a bundle's records and `refs` in one batch, then tells the index, the cache and listeners. */
  private async dropBundle (id: string, record: BundleRecord, refs: string[]): Promise<void> {
    // Read before it goes, whether the index is built yet or not: one may start building meanwhile.
    const objects = [...(await this.loadBundle(id))?.objectSizes.keys() ?? []]
    const batch = this.meta.batch()
    this.meta.removeBundle(batch, id, record)
    for (const name of refs) this.meta.deleteRef(batch, name)
    await batch.write()
    for (const name of refs) await this.noteRef(name, undefined)
    this.bundleCache.delete(id)
    await this.noteBundleObjects(index => { index.remove(id, objects) })
    this.emit('bundle:removed', { id })
  }

  // ── refs ─────────────────────────────────────────────────────────────────

  async getRef (name: string): Promise<RefTarget | undefined> { return await this.meta.getRef(name) }
  async refNames (): Promise<string[]> { return await this.meta.refNames() }
  async revisions (name?: string): Promise<RefRevision[]> { return await this.meta.revisions(name) }

  /**
   * Points the ref at the revision's bundle; false (and nothing written) for a local revision
   * when a trusted publisher's record holds the ref: the fleet's word stays (RefTarget.local).
   */
  async setRef (revision: RefRevision): Promise<boolean> {
    const outcome = await this.refLock.run(revision.ref, async () => {
      const held = await this.meta.getRef(revision.ref)
      if (revision.local === true && held?.publisher !== undefined) return undefined
      const batch = this.meta.batch()
      this.meta.setRef(batch, revision)
      await batch.write()
      await this.noteRef(revision.ref, revision)
      return { previous: held?.bundleId }
    })
    if (outcome === undefined) return false
    this.emit('ref:set', { ref: revision.ref, bundleId: revision.bundleId, manifestDigest: revision.manifestDigest, previous: outcome.previous, local: revision.local })
    return true
  }

  /**
   * Applies a verified, trusted ref record unless the ref already points where a record with
   * the same or a higher sequence put it: a replayed older record never rolls a tag back.
   * With `bounds`, a record of another publisher than `bounds.self` keeps the newest
   * MAX_HEARD_REF_REVISIONS of its ref's history, and past a bound the oldest refs other
   * publishers set go (boundHeardRefs).
   */
  async acceptRefRecord (update: SignedRefUpdate, bounds?: HeardRefBounds): Promise<'accepted' | 'stale'> {
    const heard = bounds !== undefined && update.publisher !== bounds.self
    const outcome = await this.refLock.run(update.ref, async () => await this.applyRefRecord(update, heard))
    if (outcome === 'accepted' && heard) await this.boundHeardRefs(update.publisher, bounds)
    return outcome
  }

  private async applyRefRecord (update: SignedRefUpdate, heard: boolean): Promise<'accepted' | 'stale'> {
    const current = await this.meta.getRef(update.ref)
    if (current?.sequence !== undefined && current.sequence >= update.sequence) return 'stale'
    const batch = this.meta.batch()
    const revision = {
      ref: update.ref, bundleId: update.bundleId, manifestDigest: update.manifestDigest,
      sequence: update.sequence, publisher: update.publisher, at: Date.now(),
    }
    this.meta.setRef(batch, revision)
    this.meta.putRefRecord(batch, update.ref, update.signed)
    if (heard) {
      // The new revision is not among the keys yet: keep one fewer of those.
      const keys = await this.meta.revisionKeys(update.ref)
      this.meta.deleteRevisions(batch, keys.slice(0, Math.max(0, keys.length - (MAX_HEARD_REF_REVISIONS - 1))))
    }
    await batch.write()
    await this.noteRef(update.ref, revision)
    this.emit('ref:updated', { ref: update.ref, bundleId: update.bundleId, previous: current?.bundleId, publisher: update.publisher })
    return 'accepted'
  }

  /** Keeps the heard-refs index (when built) in step with a ref just written or deleted. */
  private async noteRef (name: string, target: RefTarget | undefined): Promise<void> {
    if (this.heardRefs !== undefined) (await this.heardRefs).note(name, target)
  }

  /**
   * Evicts the oldest refs (lowest sequence) that other publishers' records set, while
   * `publisher` holds more than its bound or all of them more than theirs. Never one whose
   * bundle is held here (pinned or not) or named by a preheat record that is not cancelled:
   * what this node keeps or was asked to keep stays findable by its tag. Those still count
   * (passed over, not left out: knowing which are protected would take a read per ref held).
   */
  private async boundHeardRefs (publisher: string, bounds: HeardRefBounds): Promise<void> {
    this.heardRefs ??= HeardRefs.load(this.meta)
    const heard = await this.heardRefs
    // Past a bound, down to a 64th below it: each eviction sorts every ref it chooses among
    // (4-8 ms at 10,000), and a publisher past its bound would otherwise pay that per record.
    const overPublisher = heard.count(publisher) - bounds.maxPerPublisher
    if (overPublisher > 0) await this.evictHeardRefs(heard.oldest({ publisher }), overPublisher + Math.floor(bounds.maxPerPublisher / 64), 'publisher')
    const overTotal = heard.total(bounds.self) - bounds.maxTotal
    if (overTotal > 0) await this.evictHeardRefs(heard.oldest({ self: bounds.self }), overTotal + Math.floor(bounds.maxTotal / 64), 'total')
  }

  private async evictHeardRefs (candidates: string[], count: number, why: HeardRefEviction): Promise<void> {
    let evicted = 0
    for (const name of candidates) {
      if (evicted >= count) return
      if (await this.refLock.run(name, async () => await this.evictHeardRef(name, why))) evicted++
    }
  }

  private async evictHeardRef (name: string, why: HeardRefEviction): Promise<boolean> {
    const target = await this.meta.getRef(name)
    if (target?.publisher === undefined) {
      await this.noteRef(name, undefined)
      return false
    }
    if (await this.meta.getBundleRecord(target.bundleId) !== undefined) return false
    const preheat = await this.meta.getPreheat(target.bundleId)
    if (preheat !== undefined && !preheat.cancelled) return false
    const batch = this.meta.batch()
    this.meta.deleteRef(batch, name)
    this.meta.deleteRevisions(batch, await this.meta.revisionKeys(name))
    await batch.write()
    await this.noteRef(name, undefined)
    this.heardRefsEvicted++
    this.emit('ref:evicted', { ref: name, bundleId: target.bundleId, publisher: target.publisher, why })
    return true
  }

  /** Every signed ref record held, to hand to neighbours. */
  async refRecords (): Promise<Uint8Array[]> { return await this.meta.refRecords() }

  async objectBySha256 (sha256: string): Promise<string | undefined> { return await this.meta.objectBySha256(sha256) }

  /** The object indexed under this sha256, with its size, when its file is here whole; else undefined. */
  async wholeObjectBySha256 (sha256: string): Promise<{ hash: string, size: number } | undefined> {
    const hash = await this.objectBySha256(sha256)
    if (hash === undefined) return undefined
    const size = await fileSize(this.objectPath(hash))
    return size === undefined ? undefined : { hash, size }
  }

  /** A whole object's bytes, when it is here and at most `maxBytes` (a manifest, a config); else undefined. */
  async readSmallObject (hash: string, maxBytes: number): Promise<Buffer | undefined> {
    return await readSmallFile(this.objectPath(hash), maxBytes)
  }

  /**
   * A document held whole here (a manifest, an index): the bytes of the object indexed under this
   * sha256 when they are at most `maxBytes` and hash to it; else undefined.
   */
  async readDocument (sha256: string, maxBytes: number): Promise<Buffer | undefined> {
    const hash = await this.objectBySha256(sha256)
    if (hash === undefined) return undefined
    const bytes = await this.readSmallObject(hash, maxBytes)
    return bytes !== undefined && sha256Hex(bytes) === sha256 ? bytes : undefined
  }

  /**
   * Every document held whole here under its sha256 (the OCI blobs pushed, pulled or fetched
   * through) of at most `maxBytes` whose bytes hash to it: manifests, indexes, configs. Read
   * one at a time; larger objects (layers) are sized by their open file and not read.
   */
  async * heldDocuments (maxBytes: number, options: { signal?: AbortSignal } = {}): AsyncGenerator<{ sha256: string, bytes: Buffer }> {
    for (const [sha256, hash] of await this.meta.sha256Entries()) {
      options.signal?.throwIfAborted()
      const bytes = await this.readSmallObject(hash, maxBytes)
      if (bytes !== undefined && sha256Hex(bytes) === sha256) yield { sha256, bytes }
    }
  }

  /** A bundle ID, a unique prefix of one (8+ hex digits), a ref name, or a snapdir ID. */
  async resolve (idOrRef: string): Promise<string> {
    if (/^[0-9a-f]{64}$/.test(idOrRef) && await this.meta.getBundleRecord(idOrRef) !== undefined) return idOrRef
    const ref = await this.meta.getRef(idOrRef)
    if (ref !== undefined) return ref.bundleId
    if (/^[0-9a-f]{64}$/.test(idOrRef)) {
      const bySnapdir = await this.meta.bundleIdBySnapdirId(idOrRef)
      if (bySnapdir !== undefined) return bySnapdir
    }
    if (/^[0-9a-f]{8,63}$/.test(idOrRef)) {
      const matches = (await this.bundleIds()).filter(id => id.startsWith(idOrRef))
      if (matches.length === 1 && matches[0] !== undefined) return matches[0]
    }
    throw new BundleNotFoundError(idOrRef)
  }

  // ── objects and chunks ───────────────────────────────────────────────────

  /**
   * Refuses (NoRoomError, naming `what`) an object of `size` bytes whose missing part the disk
   * has no room for: a client that would stream it as it arrives hears why before a pull starts
   * that could only end with its response cut when the disk fills.
   */
  async requireRoomFor (hash: string, size: number, what: string): Promise<void> {
    await this.makeRoom(size - heldBytes(await this.objectState(hash), size, this.chunkSize), what)
  }

  /**
   * Refuses (NoRoomError) a pull of this bundle (of `objects` of it, when given) whose missing
   * bytes the disk has no room for, before any chunk is asked for: such a pull could only fill
   * the disk, and fill it again on every retry, while other writers (containerd, its unpack)
   * lose. What the quota would evict once those bytes are held counts as room
   * (`quotaWouldFree`), and is evicted now, before the pull (the keeper's own choice, made
   * early): evicted only as the pull's objects complete, the room would come after the disk
   * had filled. Nothing is evicted for a pull that is refused.
   */
  async requireRoomForBundle (id: string, options: { objects?: ReadonlySet<string> } = {}): Promise<void> {
    const loaded = await this.requireBundle(id)
    const objects = [...loaded.objectSizes].filter(([hash]) => options.objects === undefined || options.objects.has(hash))
    let lacking = 0
    // Several looks at once: each is a trip through libuv's pool, and one after another they were
    // 39 ms of a neighbour pull's start at load ~9 (five objects), before its first chunk request.
    await forEachLimited(objects, OBJECT_STATE_CONCURRENCY, async ([hash, size]) => {
      // Awaited before the sum is read: `lacking += … await …` reads `lacking` before the await,
      // so looks running at once each added to 0 and the last one's lack was all that counted.
      const held = heldBytes(await this.objectState(hash), size, loaded.manifest.chunkSize)
      lacking += size - held
    })
    await this.makeRoom(lacking, `bundle ${id}`, id)
  }

  /**
   * Refuses (NoRoomError) `bytes` more on the store's disk unless it has them free, or they
   * are free once the quota evicts what it would for them (then it evicts it now, sparing
   * `protect`, the bundle they are for).
   */
  private async makeRoom (bytes: number, what: string, protect?: string): Promise<void> {
    if (bytes <= 0) return
    const free = await diskFreeBytes(this.layout.partial)
    if (bytes <= free) return
    if (this.quotaBytes === undefined) throw new NoRoomError(what, bytes, free)
    const evicted = await underQuotaLock(this, async () => {
      // Read again under the lock: another pull or the keeper may have made room meanwhile.
      const free = await diskFreeBytes(this.layout.partial)
      if (bytes <= free) return []
      const evictable = await quotaWouldFree(this, bytes, { protect })
      if (bytes > free + evictable) throw new NoRoomError(what, bytes, free, evictable)
      return await evictOverQuota(this, { protect, incomingBytes: bytes })
    })
    if (evicted.length > 0) this.emit('quota:evicted', { ids: evicted, for: what })
  }

  async objectState (hash: string): Promise<ObjectState> {
    // An object being filled here is not complete: its bitmap in memory is the durable one.
    const open = this.partials.durableBitmap(hash)
    if (open !== undefined) return { state: 'partial', bitmap: new ChunkBitmap(open.chunkCount, open.bytes) }
    if (await this.hasObject(hash)) return { state: 'complete' }
    const partial = await this.meta.getPartial(hash)
    if (partial === undefined) return { state: 'missing' }
    return { state: 'partial', bitmap: new ChunkBitmap(chunkCount(partial.size), partial.bitmap) }
  }

  /**
   * Verified bytes of one chunk, from a complete object or a partial one that has it, through
   * kept-open handles (into `into` when given, which must hold a chunk).
   */
  async readChunk (hash: string, index: number, options: ReadOptions & { into?: Uint8Array } = {}): Promise<Buffer> {
    options.signal?.throwIfAborted()
    const chunkSize = this.chunkSize
    const fromPartial = await this.partials.readDurable(hash, index, options.into)
    if (fromPartial !== undefined) return asBuffer(fromPartial)
    const whole = await this.readers.read(hash, index * chunkSize, chunkSize, options.into)
    if (whole !== undefined) {
      if (whole.length === 0 && index !== 0) throw new ChunkNotPresentError(hash, index)
      return asBuffer(whole)
    }
    const partial = await this.meta.getPartial(hash)
    if (partial === undefined || index < 0 || index >= chunkCount(partial.size)) throw new ChunkNotPresentError(hash, index)
    if (!new ChunkBitmap(chunkCount(partial.size), partial.bitmap).has(index)) throw new ChunkNotPresentError(hash, index)
    const length = Math.min(chunkSize, partial.size - index * chunkSize)
    return await readAt(this.layout.partialPath(hash), index * chunkSize, length)
  }

  get chunkSize (): number { return 1024 * 1024 }

  /**
   * A chunk-sized buffer to read chunks into (readChunk's `into`) while chunks are read past
   * the page cache: page-aligned, so a direct read lands in it instead of in a bounce buffer
   * that is then copied out (a 1 MiB copy per chunk of every response behind a pull, ~0.05-0.09
   * CPU-s of an edge's 512 MiB layer; docs/architecture.md, "the cpu2 lane"). Undefined without
   * direct I/O or with MAX_LENT_READ_BUFFERS out. Give it back (returnReadBuffer) only once
   * nothing reads it any more, a socket's write included.
   */
  lendReadBuffer (): Buffer | undefined {
    if (!this.directIoMode.on || this.lentReadBuffers >= MAX_LENT_READ_BUFFERS) return undefined
    this.lentReadBuffers++
    const view = this.aligned.take()
    return Buffer.from(view.buffer, view.byteOffset, view.byteLength)
  }

  /** Buffers lent by lendReadBuffer and not given back yet. */
  get readBuffersLent (): number { return this.lentReadBuffers }

  returnReadBuffer (buffer: Buffer): void {
    this.lentReadBuffers--
    this.aligned.give(buffer)
  }

  /**
   * The chunk table of `object` when a pull completed it here lately (every chunk was written
   * after its BLAKE3 matched the entry, and the whole object after its own) or a staged file
   * became it (hashed from its bytes as they were written, the whole checked against its name):
   * its chunks' hashes without reading it back (an object is named by its content: the table
   * never goes stale). Undefined for others (completed before a restart, long ago).
   */
  verifiedChunkTable (object: string): string[] | undefined {
    return this.verifiedChunkTables.get(object)
  }

  /**
   * `table` is `object`'s chunk table, computed here from the bytes that became the object (a
   * pull's verified chunks, a staged file hashed as it was written): verifiedChunkTable's.
   */
  noteChunkTable (object: string, table: string[]): void {
    this.verifiedChunkTables.set(object, table)
  }

  /**
   * Verifies one chunk against its bundle's table, then writes it at its offset and resolves
   * once it is durable and its bit recorded (group commit, see PartialObjects). The last chunk
   * completes the object: it is hashed whole once more and renamed into objects/, and only
   * then counted as present. `onWritten` fires when the bytes are in the file: the caller's
   * buffer is free from then on.
   */
  async writeChunk (bundleId: string, hash: string, index: number, bytes: Uint8Array, options: ReadOptions & { onWritten?: () => void, keep?: KeepBytes } = {}): Promise<ChunkWriteResult> {
    const loaded = await this.requireBundle(bundleId)
    const size = loaded.objectSizes.get(hash)
    if (size === undefined) throw new ObjectUnknownError(hash, bundleId)
    const expected = chunkHashes(loaded.manifest, { hash, size })[index]
    if (expected === undefined) throw new ChunkNotPresentError(hash, index)
    const actual = blake3Hex(bytes)
    if (actual !== expected) throw new ChunkHashMismatchError(hash, index, expected, actual)
    options.signal?.throwIfAborted()
    // A response waiting on the object sends these bytes now, not after the write and a read back
    // (an image's config: 60-74 ms through a busy edge whose thread pool wrote a layer's chunks).
    this.emit('chunk:verified', { object: hash, index, bytes, keep: options.keep })
    if (size > loaded.manifest.chunkSize) return await this.partials.write(hash, size, index, bytes, { ...options, chunkHash: expected })
    try {
      return await this.objectLock.run(hash, async () => {
        if (await this.hasObject(hash)) return { stored: false, objectComplete: false }
        return await this.writeSingleChunkObject(hash, bytes)
      })
    } finally {
      options.onWritten?.()
    }
  }

  /** An object of one chunk is its chunk: staged, synced and renamed into objects/ in one go. */
  private async writeSingleChunkObject (hash: string, bytes: Uint8Array): Promise<ChunkWriteResult> {
    const staged = this.layout.stagingPath('chunk', hash)
    await writeAt(staged, 0, bytes, { fsync: this.fsync })
    await publishObject(staged, this.objectPath(hash))
    this.emit('chunk:stored', { object: hash, index: 0 })
    this.emit('object:complete', { object: hash, rereadBytes: 0 })
    return { stored: true, objectComplete: true }
  }

  /** gc removes a partial object: its open file is closed first, so no write lands in a removed file. */
  async removePartial (hash: string): Promise<void> {
    await this.partials.discard(hash)
    await removeQuietly(this.layout.partialPath(hash))
    await this.meta.deletePartial(hash)
  }

  /** gc removes a complete object's file: a kept read handle must not serve it on. */
  forgetObject (hash: string): void {
    this.readers.forget(hash)
  }

  /** A crash between publishing an object and deleting its partial record leaves the record; drop it. */
  private async dropFinishedPartials (): Promise<void> {
    for (const hash of await this.meta.partialObjects()) {
      if (await this.hasObject(hash)) await this.meta.deletePartial(hash)
    }
  }
}

/** The same bytes as a Buffer, without a copy (callers of readChunk get a Buffer). */
function asBuffer (bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Bytes of an object of `size` held here in its state: all, its verified chunks (the last one short), or none. */
function heldBytes (state: ObjectState, size: number, chunkSize: number): number {
  if (state.state === 'complete') return size
  return state.state === 'partial' ? presentChunkBytes(state.bitmap, size, chunkSize) : 0
}

function presentChunkBytes (bitmap: ChunkBitmap, size: number, chunkSize: number): number {
  let bytes = 0
  for (let i = 0; i < bitmap.chunkCount; i++) {
    if (bitmap.has(i)) bytes += Math.min(chunkSize, size - i * chunkSize)
  }
  return bytes
}
