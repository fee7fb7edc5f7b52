import { mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import {
  bundleIdOf, bundleObjects, createBundleManifest, encodeBundleManifest, parseManifest, checkDirectoryChecksums,
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
}

/**
 * Copies one snapshot between stores, only the objects the destination lacks, hashing every
 * byte it reads so a damaged source never damages the destination.
 */
export async function syncSnapshot (id: string, from: SyncEndpoint, to: SyncEndpoint, options: { signal?: AbortSignal } = {}): Promise<SyncResult> {
  const manifestText = from.kind === 'shoal'
    ? (await from.store.requireBundle(await from.store.resolve(id))).manifest.manifestText
    : await from.store.readManifest(id)
  const entries = parseManifest(manifestText)
  checkDirectoryChecksums(entries)
  const objects = bundleObjects({ entries })
  const sourcePath = (hash: string): string => from.store.objectPath(hash)
  const result: SyncResult = { id: '', copiedObjects: 0, copiedBytes: 0, skippedObjects: 0 }

  if (to.kind === 'file') {
    for (const object of objects) {
      options.signal?.throwIfAborted()
      if (await to.store.hasObject(object.hash)) { result.skippedObjects++; continue }
      await to.store.putObject(sourcePath(object.hash), object.hash, options)
      result.copiedObjects++
      result.copiedBytes += object.size
    }
    result.id = await to.store.writeManifest(manifestText)
    return result
  }

  // Into a shoal store: chunk tables are computed from the bytes as they are copied in.
  const staging = await mkdtemp(join(to.store.layout.tmp, 'sync-'))
  try {
    const chunkTables = new Map<string, string[]>()
    for (const [n, object] of objects.entries()) {
      options.signal?.throwIfAborted()
      const present = await to.store.hasObject(object.hash)
      const copy = await ingestFile(present ? to.store.objectPath(object.hash) : sourcePath(object.hash), {
        copyTo: present ? undefined : join(staging, String(n)), signal: options.signal,
      })
      if (copy.checksum !== object.hash) throw new StoreError('OBJECT_CORRUPT', `object ${object.hash} in the source hashes to ${copy.checksum}; nothing was synced`)
      if (copy.chunkHashes !== undefined) chunkTables.set(object.hash, copy.chunkHashes)
      if (present) { result.skippedObjects++; continue }
      await publishObject(copy.stagedPath, to.store.objectPath(object.hash))
      result.copiedObjects++
      result.copiedBytes += object.size
    }
    const bundle = createBundleManifest(entries, chunkTables)
    const encoded = encodeBundleManifest(bundle)
    result.id = bundleIdOf(encoded)
    if (await to.store.bundleRecord(result.id) === undefined) await to.store.commitBundle(result.id, encoded, bundle, [])
    return result
  } finally {
    await removeQuietly(staging)
  }
}
