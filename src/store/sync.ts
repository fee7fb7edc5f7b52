import { mkdir, mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import {
  bundleIdOf, bundleObjects, createBundleManifest, encodeBundleManifest, parseManifest, checkDirectoryChecksums,
  type ManifestEntry,
} from '../manifest/index.js'
import { StoreError } from './errors.js'
import { FileStore } from './file-store.js'
import { ingestFile } from './ingest.js'
import { publishObject, removeQuietly } from './object-files.js'
import type { Store } from './store.js'

export type SyncEndpoint = { kind: 'shoal', store: Store } | { kind: 'file', store: FileStore }

export interface SyncResult {
  /** The bundle ID in a shoal store, or the snapdir ID in a file store. */
  id: string
  copiedObjects: number
  copiedBytes: number
  skippedObjects: number
  /** Objects the destination held with the wrong bytes, replaced by verified copies. */
  repairedObjects: number
}

/** An object read from the source and verified, waiting in the destination's staging. */
interface StagedObject { hash: string, stagedPath: string, size: number }

/** What a snapshot needs, where it can be refused before anything is published. */
const SNAPSHOT_ID = /^[0-9a-f]{64}$/

/**
 * Copies one snapshot between stores, only the objects the destination lacks (or holds
 * damaged), hashing every byte it reads so a damaged source never damages the destination.
 * Two phases: every object is read, verified and staged first; only when all of them are good
 * are they published and the manifest written. A refused sync leaves the destination as it was.
 */
export async function syncSnapshot (id: string, from: SyncEndpoint, to: SyncEndpoint, options: { signal?: AbortSignal } = {}): Promise<SyncResult> {
  if (from.kind === 'file' && !SNAPSHOT_ID.test(id)) {
    throw new StoreError('SNAPSHOT_ID_INVALID', `${JSON.stringify(id)} is not a snapdir ID (64 lowercase hex digits); a file:// store names its snapshots only by ID`)
  }
  let knownSizes: ReadonlyMap<string, number> | undefined
  let manifestText: string
  if (from.kind === 'shoal') {
    const loaded = await from.store.requireBundle(await from.store.resolve(id))
    manifestText = loaded.manifest.manifestText
    knownSizes = loaded.objectSizes
  } else {
    manifestText = await from.store.readManifest(id)
  }
  const entries = parseManifest(manifestText)
  checkDirectoryChecksums(entries)
  // A symlink's entry carries the link's size (snapdir's rule), so object sizes come from the
  // bytes read, not from the entries.
  const hashes = bundleObjects({ entries }).map(o => o.hash)
  const result: SyncResult = { id: '', copiedObjects: 0, copiedBytes: 0, skippedObjects: 0, repairedObjects: 0 }
  const sizes = new Map<string, number>()
  const chunkTables = new Map<string, string[]>()
  const staged: StagedObject[] = []
  const tmpRoot = to.kind === 'shoal' ? to.store.layout.tmp : to.store.root
  // The first object sent to a new file store creates it, as `--data` creates a data dir.
  await mkdir(tmpRoot, { recursive: true })
  const staging = await mkdtemp(join(tmpRoot, to.kind === 'shoal' ? 'sync-' : '.tmp-'))
  try {
    for (const [n, hash] of hashes.entries()) {
      options.signal?.throwIfAborted()
      const present = await to.store.hasObject(hash)
      if (present) {
        // A copy already there is hashed too: a damaged one is replaced rather than trusted,
        // and a shoal destination needs the chunk table of what it holds.
        const held = await ingestFile(to.store.objectPath(hash), { signal: options.signal })
        if (held.checksum === hash) {
          sizes.set(hash, held.size)
          if (held.chunkHashes !== undefined) chunkTables.set(hash, held.chunkHashes)
          result.skippedObjects++
          continue
        }
        result.repairedObjects++
      }
      const copy = await ingestFile(from.store.objectPath(hash), { copyTo: join(staging, String(n)), signal: options.signal })
      if (copy.checksum !== hash) throw new StoreError('OBJECT_CORRUPT', `object ${hash} in the source hashes to ${copy.checksum}; nothing was synced`)
      if (knownSizes?.get(hash) !== undefined && knownSizes.get(hash) !== copy.size) {
        throw new StoreError('OBJECT_CORRUPT', `object ${hash} in the source has ${copy.size} bytes, its bundle says ${knownSizes.get(hash) ?? 0}; nothing was synced`)
      }
      sizes.set(hash, copy.size)
      if (copy.chunkHashes !== undefined) chunkTables.set(hash, copy.chunkHashes)
      staged.push({ hash, stagedPath: copy.stagedPath, size: copy.size })
    }

    if (to.kind === 'shoal') {
      const sized: ManifestEntry[] = entries.map(e => e.type === 'F' ? { ...e, objectSize: sizes.get(e.checksum) } : e)
      const bundle = createBundleManifest(sized, chunkTables)
      const encoded = encodeBundleManifest(bundle)
      result.id = bundleIdOf(encoded)
      await publishAll(staged, to.store, result)
      if (await to.store.bundleRecord(result.id) === undefined) await to.store.commitBundle(result.id, encoded, bundle, [])
    } else {
      await publishAll(staged, to.store, result)
      result.id = await to.store.writeManifest(manifestText)
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
