import { CodedError } from '../errors/index.js'

/** Base of every store error: callers branch on `code`. */
export class StoreError extends CodedError {
  override name = 'StoreError'
}

export class BundleNotFoundError extends StoreError {
  constructor (idOrRef: string) {
    super('BUNDLE_NOT_FOUND', `no bundle or ref ${JSON.stringify(idOrRef)} in this store; \`shoal ls\` lists what is here`)
    this.name = 'BundleNotFoundError'
  }
}

export class ChunkHashMismatchError extends StoreError {
  constructor (readonly object: string, readonly index: number, expected: string, actual: string) {
    super('CHUNK_HASH_MISMATCH', `chunk ${index} of object ${object} hashes to ${actual}, expected ${expected}; the chunk was dropped and must be fetched again`)
    this.name = 'ChunkHashMismatchError'
  }
}

export class ChunkNotPresentError extends StoreError {
  constructor (object: string, index: number) {
    super('CHUNK_NOT_PRESENT', `chunk ${index} of object ${object} is not held here`)
    this.name = 'ChunkNotPresentError'
  }
}

export class ObjectUnknownError extends StoreError {
  constructor (object: string, bundleId: string) {
    super('OBJECT_UNKNOWN', `object ${object} is not part of bundle ${bundleId}`)
    this.name = 'ObjectUnknownError'
  }
}

export class ObjectCorruptError extends StoreError {
  constructor (object: string, actual: string) {
    super('OBJECT_CORRUPT', `object ${object} hashes to ${actual}; it was removed and must be fetched again`)
    this.name = 'ObjectCorruptError'
  }
}

/** An object read from another store is not what its name says: refused before it is published. */
export class SourceObjectCorruptError extends StoreError {
  constructor (readonly object: string, readonly where: string, why: string, outcome = 'it was not copied, and the snapshot was not published at the destination') {
    super('OBJECT_CORRUPT', `object ${object} at ${where} ${why}; ${outcome}`)
    this.name = 'SourceObjectCorruptError'
  }
}

export class DiskFullError extends StoreError {
  constructor (path: string, options?: ErrorOptions) {
    super('DISK_FULL', `the disk filled up while writing ${path}; nothing was stored — free space (\`shoal gc\`, remove bundles) or set a quota, then try again`, options)
    this.name = 'DiskFullError'
  }
}

/**
 * A blob of known size does not fit in what the store's disk has free: refused before a byte
 * of it is fetched, so a client hears why at once (containerd tries its next host) instead of
 * a response cut when the disk fills, again on every retry.
 */
export class NoRoomError extends StoreError {
  /** `evictableBytes`: what the quota would evict to make room for it (counted as room too). */
  constructor (readonly what: string, readonly neededBytes: number, readonly freeBytes: number, readonly evictableBytes = 0) {
    const evictable = evictableBytes > 0 ? ` (and the quota would evict ${evictableBytes} more)` : ''
    super('DISK_FULL', `${what} needs ${neededBytes} bytes and the store's disk has ${freeBytes} free${evictable}; nothing was fetched — free space (\`shoal gc\`, remove bundles) or set a quota below the disk's size, then try again`)
    this.name = 'NoRoomError'
  }
}

/**
 * What was asked to be stored needs more bytes than the whole quota: no eviction could make
 * room, so it is refused before anything is written (not after filling the store with it).
 */
export class OverQuotaError extends StoreError {
  constructor (readonly what: string, readonly neededBytes: number, readonly quotaBytes: number) {
    super('OVER_QUOTA', `${what} needs ${neededBytes} bytes, more than this node's quota of ${quotaBytes} bytes (--quota); nothing was stored — raise the quota, or fetch it on a node with more room`)
    this.name = 'OverQuotaError'
  }
}

export class DestinationExistsError extends StoreError {
  constructor (path: string) {
    super('DESTINATION_EXISTS', `${path} exists and is not empty; export into a new or empty directory`)
    this.name = 'DestinationExistsError'
  }
}

export class StoreLockedError extends StoreError {
  constructor (dir: string, options?: ErrorOptions) {
    super('STORE_LOCKED', `the store at ${dir} is in use by another process (a running \`shoal daemon\`?); stop it or talk to it with --api`, options)
    this.name = 'StoreLockedError'
  }
}

/** A write came after the store began closing (the daemon is stopping): nothing of it was written. */
export class StoreClosingError extends StoreError {
  constructor (what: string) {
    super('STORE_CLOSING', `the store is closing, so ${what} were not written; write again once it is open`)
    this.name = 'StoreClosingError'
  }
}

export class StoreNotFoundError extends StoreError {
  constructor (dir: string) {
    super('STORE_NOT_FOUND', `there is no shoal store at ${dir}; check --data (or $SHOAL_DATA), or push something there first`)
    this.name = 'StoreNotFoundError'
  }
}

/** Turns ENOSPC into the error a person can act on; other errors pass through. */
export function translateWriteError (err: unknown, path: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new DiskFullError(path, { cause: err })
  return err
}
