import { randomUUID } from 'node:crypto'
import { open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { UPLOAD_LEASE_MS } from './constants.js'
import { StoreError, translateWriteError } from './errors.js'
import type { HashedBlob } from './blob-hasher.js'
import { ingestFile } from './ingest.js'
import { publishObject, removeQuietly } from './object-files.js'
import type { Store } from './store.js'

/** The bytes of an upload do not hash to the digest the client named; nothing was stored. */
export class BlobDigestMismatchError extends StoreError {
  constructor (readonly expected: string, readonly actual: string) {
    super('BLOB_DIGEST_MISMATCH', `the uploaded bytes hash to sha256:${actual}, not sha256:${expected}; nothing was stored: upload the blob again`)
    this.name = 'BlobDigestMismatchError'
  }
}

/** An object made from one uploaded file, with what the push of its manifest will need. */
export interface IngestedBlob {
  /** BLAKE3: the object's name in the store. */
  object: string
  size: number
  /** Lowercase hex, without `sha256:`. */
  sha256: string
  /** BLAKE3 of each 1 MiB chunk, for objects over one chunk. */
  chunkHashes?: string[]
  /** False when the store already held these bytes. */
  created: boolean
}

export interface IngestBlobOptions {
  /**
   * The sha256 (hex) the bytes must have. When given, a mismatch stores nothing, and a
   * match is recorded in the sha256 index so `/v2/…/blobs/sha256:<hex>` finds the object.
   */
  sha256?: string
  /**
   * The staged file's digests, computed from the buffers it was written from as they were
   * written (GrowingFile.hashes): the file is then not read again. Only for a file this
   * process wrote under the store's tmp/ and nobody else can write.
   */
  hashed?: HashedBlob
  signal?: AbortSignal
}

/**
 * Makes an object of a staged file that is ours to move (an upload under the store's tmp/):
 * one read computes BLAKE3, the chunk table and sha256 of exactly the bytes that become
 * visible (DESIGN.md: an object is hashed again before it is visible), then a rename
 * publishes it; a file hashed as it was written (`hashed`) is not read again. The staged file
 * is gone afterwards, whatever happened.
 */
export async function ingestBlobFile (store: Store, stagedPath: string, options: IngestBlobOptions = {}): Promise<IngestedBlob> {
  try {
    if (store.fsync) await syncFile(stagedPath)
    const hashed = options.hashed ?? await ingestFile(stagedPath, { sha256: true, signal: options.signal })
    const sha256 = hashed.sha256 ?? ''
    if (options.sha256 !== undefined && sha256 !== options.sha256) throw new BlobDigestMismatchError(options.sha256, sha256)
    const created = !await store.hasObject(hashed.checksum)
    if (created) {
      await publishObject(stagedPath, store.objectPath(hashed.checksum))
      store.stagedObject(stagedPath, hashed.checksum)
    }
    store.leaseObject(hashed.checksum, UPLOAD_LEASE_MS)
    if (options.sha256 !== undefined) {
      const batch = store.meta.batch()
      store.meta.indexSha256(batch, sha256, hashed.checksum)
      await batch.write()
    }
    const blob: IngestedBlob = { object: hashed.checksum, size: hashed.size, sha256, created }
    if (hashed.chunkHashes !== undefined) {
      blob.chunkHashes = hashed.chunkHashes
      // A bundle made of it soon (a pulled-through image, a gateway's one-blob bundle) need not read it back.
      store.noteChunkTable(hashed.checksum, hashed.chunkHashes)
    }
    return blob
  } catch (err) {
    throw translateWriteError(err, stagedPath)
  } finally {
    await removeQuietly(stagedPath)
  }
}

/** Makes an object of a few bytes held in memory (a manifest, an index.json). */
export async function ingestBlobBytes (store: Store, bytes: Uint8Array, options: IngestBlobOptions = {}): Promise<IngestedBlob> {
  const staged = join(store.layout.tmp, `bytes-${randomUUID()}`)
  try {
    await writeFile(staged, bytes, { mode: 0o600, flag: 'wx', signal: options.signal })
  } catch (err) {
    await removeQuietly(staged)
    throw translateWriteError(err, staged)
  }
  return await ingestBlobFile(store, staged, options)
}

async function syncFile (path: string): Promise<void> {
  const file = await open(path, 'r+')
  try {
    await file.datasync()
  } finally {
    await file.close()
  }
}
