import { mkdir, mkdtemp, open, stat } from 'node:fs/promises'
import { join } from 'node:path'
import {
  bundleIdOf, bundleObjects, createBundleManifest, encodeBundleManifest, parseManifest, checkDirectoryChecksums,
  type BundleManifest, type ManifestEntry,
} from '../manifest/index.js'
import type { BucketStore } from './bucket-store.js'
import { BUCKET_HEAD_CONCURRENCY, INGEST_BUFFER_BYTES, SYNC_OBJECT_CONCURRENCY } from './constants.js'
import { SourceObjectCorruptError, StoreError } from './errors.js'
import type { FileStore } from './file-store.js'
import { ingestFile } from './ingest.js'
import { publishObject, removeQuietly } from './object-files.js'
import { forEachLimited } from './slots.js'
import type { Store } from './store.js'
import { ingestStream } from './stream-ingest.js'

export type SyncEndpoint =
  | { kind: 'shoal', store: Store }
  | { kind: 'file', store: FileStore }
  | { kind: 'bucket', store: BucketStore }

export interface SyncResult {
  /** The bundle ID in a shoal store, or the snapdir ID in a file or bucket store. */
  id: string
  copiedObjects: number
  copiedBytes: number
  skippedObjects: number
  /** Objects a data dir or file store held with the wrong bytes, replaced by verified copies. */
  repairedObjects: number
  /** Bytes of copied objects that an interrupted earlier run had already sent (multipart parts). */
  resumedBytes: number
}

export interface SyncOptions {
  signal?: AbortSignal
  /** Bytes copied so far, as objects finish. */
  onProgress?: (copiedBytes: number) => void
}

/**
 * Where a snapshot's objects are read from: a path when they are local files, a stream
 * otherwise. Sizes come from the source, not the manifest: a symlink's entry carries the
 * link's own size (snapdir's rule), not its target's.
 */
interface SnapshotSource {
  manifestText: string
  where: (hash: string) => string
  localPath: (hash: string) => string | undefined
  size: (hash: string, signal?: AbortSignal) => Promise<number>
  open: (hash: string, signal?: AbortSignal) => AsyncIterable<Uint8Array>
}

/** An object read from the source and verified, waiting in the destination's staging. */
interface StagedObject { hash: string, stagedPath: string, size: number }

const SNAPSHOT_ID = /^[0-9a-f]{64}$/

/** A snapdir ID names a file or key in a store: only 64 lowercase hex characters may. */
export function requireSnapdirId (id: string): string {
  if (!SNAPSHOT_ID.test(id)) throw new StoreError('SNAPSHOT_ID_INVALID', `${JSON.stringify(id)} is not a snapdir ID (64 lowercase hex digits); a file:// or bucket store names its snapshots only by ID`)
  return id
}

/**
 * Copies one snapshot between stores (a shoal data dir, `file://`, `s3://`, `gs://`), only the
 * objects the destination lacks (or, locally, holds damaged), hashing every byte it reads so a
 * damaged source never damages the destination.
 *
 * Into a data dir or file store, two phases: every object is read, verified and staged first;
 * only when all are good are they published and the manifest written, so a refused sync leaves
 * the destination as it was. Into a bucket, objects go up as they verify (each is only ever
 * visible whole and correct, under its own hash) and the manifest is written last, only if all
 * of them did: a refused sync publishes no snapshot there.
 */
export async function syncSnapshot (id: string, from: SyncEndpoint, to: SyncEndpoint, options: SyncOptions = {}): Promise<SyncResult> {
  return await copySnapshot(await sourceOf(id, from, options.signal), to, options)
}

/** Pushes a directory, already walked into `bundle`, straight to a store, reading each file once more as it is sent. */
export async function pushTreeTo (dir: string, bundle: BundleManifest, to: SyncEndpoint, options: SyncOptions = {}): Promise<SyncResult> {
  const paths = new Map<string, string>()
  for (const entry of bundle.entries) if (entry.type === 'F' && !paths.has(entry.checksum)) paths.set(entry.checksum, join(dir, entry.path))
  const sizes = new Map(bundleObjects(bundle).map(o => [o.hash, o.size]))
  const localPath = (hash: string): string => paths.get(hash) ?? ''
  return await copySnapshot({
    manifestText: bundle.manifestText,
    where: localPath,
    localPath,
    size: async hash => sizes.get(hash) ?? 0,
    open: (hash, signal) => readFileStream(localPath(hash), signal),
  }, to, options)
}

async function sourceOf (id: string, from: SyncEndpoint, signal?: AbortSignal): Promise<SnapshotSource> {
  if (from.kind === 'shoal') {
    const store = from.store
    const loaded = await store.requireBundle(await store.resolve(id))
    const path = (hash: string): string => store.objectPath(hash)
    return { manifestText: loaded.manifest.manifestText, where: path, localPath: path, size: async hash => loaded.objectSizes.get(hash) ?? await sizeOfFile(path(hash)), open: (hash, s) => readFileStream(path(hash), s) }
  }
  requireSnapdirId(id)
  if (from.kind === 'file') {
    const store = from.store
    const path = (hash: string): string => store.objectPath(hash)
    return { manifestText: await store.readManifest(id), where: path, localPath: path, size: async hash => await sizeOfFile(path(hash)), open: (hash, s) => readFileStream(path(hash), s) }
  }
  const store = from.store
  return {
    manifestText: await store.readManifest(id, { signal }),
    where: hash => store.objectWhere(hash),
    localPath: () => undefined,
    size: async (hash, s) => await store.objectSize(hash, { signal: s }),
    open: (hash, s) => store.readObject(hash, { signal: s }),
  }
}

async function copySnapshot (source: SnapshotSource, to: SyncEndpoint, options: SyncOptions): Promise<SyncResult> {
  const entries = parseManifest(source.manifestText)
  checkDirectoryChecksums(entries)
  const hashes = bundleObjects({ entries }).map(o => o.hash)
  const result: SyncResult = { id: '', copiedObjects: 0, copiedBytes: 0, skippedObjects: 0, repairedObjects: 0, resumedBytes: 0 }
  if (to.kind === 'bucket') return await copyIntoBucket(source, hashes, to.store, result, options)
  return await copyIntoLocal(source, entries, hashes, to, result, options)
}

async function copyIntoBucket (source: SnapshotSource, hashes: string[], store: BucketStore, result: SyncResult, options: SyncOptions): Promise<SyncResult> {
  const { signal } = options
  // Look first (HEADs in parallel), then copy what is missing or of the wrong size.
  const missing: Array<{ hash: string, size: number }> = []
  await forEachLimited(hashes, BUCKET_HEAD_CONCURRENCY, async hash => {
    const size = await source.size(hash, signal)
    if (await store.hasObject(hash, size, { signal })) result.skippedObjects++
    else missing.push({ hash, size })
  }, signal)
  await forEachLimited(missing, SYNC_OBJECT_CONCURRENCY, async ({ hash, size }) => {
    const report = await store.putObject(hash, size, () => source.open(hash, signal), { signal, from: source.where(hash) })
    result.resumedBytes += report.resumedBytes
    result.copiedObjects++
    result.copiedBytes += size
    options.onProgress?.(result.copiedBytes)
  }, signal)
  // The manifest goes last: a manifest in a store names objects that are all there.
  result.id = await store.writeManifest(source.manifestText, { signal })
  return result
}

async function copyIntoLocal (source: SnapshotSource, entries: ManifestEntry[], hashes: string[], to: Extract<SyncEndpoint, { kind: 'shoal' | 'file' }>, result: SyncResult, options: SyncOptions): Promise<SyncResult> {
  const { signal } = options
  const sizes = new Map<string, number>()
  const chunkTables = new Map<string, string[]>()
  const staged: StagedObject[] = []
  const tmpRoot = to.kind === 'shoal' ? to.store.layout.tmp : to.store.root
  // The first object sent to a new file store creates it, as `--data` creates a data dir.
  await mkdir(tmpRoot, { recursive: true })
  const staging = await mkdtemp(join(tmpRoot, to.kind === 'shoal' ? 'sync-' : '.tmp-'))
  const nothingSynced = 'nothing was synced'
  try {
    let stagedBytes = 0
    await forEachLimited(hashes, SYNC_OBJECT_CONCURRENCY, async (hash, n) => {
      if (await to.store.hasObject(hash)) {
        // A copy already there is hashed too: a damaged one is replaced rather than trusted,
        // and a shoal destination needs the chunk table of what it holds.
        const held = await ingestFile(to.store.objectPath(hash), { signal })
        if (held.checksum === hash) {
          sizes.set(hash, held.size)
          if (held.chunkHashes !== undefined) chunkTables.set(hash, held.chunkHashes)
          result.skippedObjects++
          return
        }
        result.repairedObjects++
      }
      const expected = await source.size(hash, signal)
      const path = source.localPath(hash)
      const copyTo = join(staging, String(n))
      const copy = path !== undefined
        ? await ingestFile(path, { copyTo, signal })
        : { ...await ingestStream(source.open(hash, signal), expected, copyTo, { hash, where: source.where(hash) }, { signal }), size: expected }
      if (copy.checksum !== hash) throw new SourceObjectCorruptError(hash, source.where(hash), `hashes to ${copy.checksum}`, nothingSynced)
      if (copy.size !== expected) throw new SourceObjectCorruptError(hash, source.where(hash), `has ${copy.size} bytes, its bundle says ${expected}`, nothingSynced)
      sizes.set(hash, copy.size)
      if (copy.chunkHashes !== undefined) chunkTables.set(hash, copy.chunkHashes)
      staged.push({ hash, stagedPath: copy.stagedPath, size: copy.size })
      stagedBytes += copy.size
      options.onProgress?.(stagedBytes)
    }, signal)

    if (to.kind === 'shoal') {
      const sized: ManifestEntry[] = entries.map(e => e.type === 'F' ? { ...e, objectSize: sizes.get(e.checksum) } : e)
      const bundle = createBundleManifest(sized, chunkTables)
      const encoded = encodeBundleManifest(bundle)
      result.id = bundleIdOf(encoded)
      await publishAll(staged, to.store, result)
      if (await to.store.bundleRecord(result.id) === undefined) await to.store.commitBundle(result.id, encoded, bundle, [])
    } else {
      await publishAll(staged, to.store, result)
      result.id = await to.store.writeManifest(source.manifestText)
    }
    return result
  } finally {
    await removeQuietly(staging)
  }
}

async function publishAll (staged: readonly StagedObject[], store: { objectPath: (hash: string) => string }, result: SyncResult): Promise<void> {
  for (const object of staged) {
    await publishObject(object.stagedPath, store.objectPath(object.hash))
    result.copiedObjects++
    result.copiedBytes += object.size
  }
}

async function sizeOfFile (path: string): Promise<number> {
  return (await stat(path)).size
}

/**
 * A local object's bytes, read into one buffer that is handed out again for each read: every
 * consumer here (bytePieces) copies what it gets before asking for more, so a sync of
 * gigabytes leaves no garbage behind its reads.
 */
async function * readFileStream (path: string, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const file = await open(path, 'r')
  try {
    const buffer = Buffer.allocUnsafe(INGEST_BUFFER_BYTES)
    for (let position = 0; ;) {
      signal?.throwIfAborted()
      const { bytesRead } = await file.read(buffer, 0, buffer.length, position)
      if (bytesRead === 0) return
      position += bytesRead
      yield buffer.subarray(0, bytesRead)
    }
  } finally {
    await file.close()
  }
}
