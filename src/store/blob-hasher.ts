import { createBlake3, createSha256, type Blake3Hasher } from '../hash/index.js'
import { CHUNK_SIZE_BYTES } from '../manifest/index.js'
import type { IngestedFile } from './ingest.js'

/** Every digest the store and the OCI checks need of a blob: what ingestFile learns from one read of it, sha256 included. */
export type HashedBlob = Omit<IngestedFile, 'stagedPath' | 'sha256'> & { sha256: string }

/**
 * Hashes a blob in pieces of any size, in order, as it is written: BLAKE3 whole and per 1 MiB
 * chunk (chunk boundaries counted from the blob's first byte, whatever the pieces), and sha256.
 * A staging file hashed this way from the buffers it is written from needs no read of its own
 * to become an object (GrowingFile, docs/architecture.md "Pull-through streams into the fleet").
 */
export class BlobHasher {
  private readonly whole = createBlake3()
  private readonly sha256 = createSha256()
  private chunk: Blake3Hasher = createBlake3()
  private inChunk = 0
  private readonly chunkHashes: string[] = []
  private size = 0
  private result: HashedBlob | undefined

  update (bytes: Uint8Array): void {
    if (this.result !== undefined) throw new Error('a blob hasher was updated after its digest')
    this.whole.update(bytes)
    this.sha256.update(bytes)
    this.size += bytes.byteLength
    let at = 0
    while (at < bytes.byteLength) {
      const take = Math.min(bytes.byteLength - at, CHUNK_SIZE_BYTES - this.inChunk)
      this.chunk.update(at === 0 && take === bytes.byteLength ? bytes : bytes.subarray(at, at + take))
      this.inChunk += take
      at += take
      if (this.inChunk === CHUNK_SIZE_BYTES) this.endChunk()
    }
  }

  /** The digests of everything given; the hasher takes nothing more. */
  digest (): HashedBlob {
    if (this.result !== undefined) return this.result
    if (this.inChunk > 0) this.endChunk()
    this.result = {
      checksum: this.whole.digestHex(),
      size: this.size,
      sha256: this.sha256.digest('hex'),
      ...(this.size > CHUNK_SIZE_BYTES ? { chunkHashes: this.chunkHashes } : {}),
    }
    return this.result
  }

  private endChunk (): void {
    this.chunkHashes.push(this.chunk.digestHex())
    this.chunk = createBlake3()
    this.inChunk = 0
  }
}
