import type { ErrorCode } from '../errors/index.js'

// One class per failure. Callers branch on `code` (stable, documented in index.ts)
// or `name`; messages are for a person: what, where, expected vs found, what to do.

export abstract class OciError extends Error {
  /** A code of the catalogue (src/errors). */
  abstract readonly code: ErrorCode
}

/** `oci-layout` missing or wrong, or something under `blobs/` that is not a blob file. */
export class OciInvalidLayoutError extends OciError {
  readonly code = 'OCI_INVALID_LAYOUT'
  override readonly name = 'OciInvalidLayoutError'
}

/** index.json (or a nested image index) unreadable, too large, not JSON, or the wrong shape. */
export class OciInvalidIndexError extends OciError {
  readonly code = 'OCI_INVALID_INDEX'
  override readonly name = 'OciInvalidIndexError'
}

/** An image manifest that is too large, not JSON, or the wrong shape. */
export class OciInvalidManifestError extends OciError {
  readonly code = 'OCI_INVALID_MANIFEST'
  override readonly name = 'OciInvalidManifestError'
}

/** A digest that is malformed or uses an algorithm other than sha256. */
export class OciUnsupportedDigestError extends OciError {
  readonly code = 'OCI_UNSUPPORTED_DIGEST'
  override readonly name = 'OciUnsupportedDigestError'

  constructor (readonly digest: string, readonly where: string, options?: ErrorOptions) {
    super(`unsupported digest "${digest}" in ${where}: shoal accepts only "sha256:" followed by 64 lowercase hex digits; re-export the image with sha256 digests`, options)
  }
}

export class OciBlobMissingError extends OciError {
  readonly code = 'OCI_BLOB_MISSING'
  override readonly name = 'OciBlobMissingError'

  constructor (readonly digest: string, readonly referencedBy: string, options?: ErrorOptions & { hint?: string }) {
    super(`blob ${digest} referenced by ${referencedBy} is missing from blobs/sha256/; ${options?.hint ?? 'the layout is incomplete: copy or export the image again'}`, options)
  }
}

export class OciBlobSizeMismatchError extends OciError {
  readonly code = 'OCI_BLOB_SIZE_MISMATCH'
  override readonly name = 'OciBlobSizeMismatchError'

  constructor (readonly digest: string, readonly referencedBy: string, readonly expectedSize: number, readonly actualSize: number, options?: ErrorOptions) {
    super(`blob ${digest} is ${actualSize} bytes but ${referencedBy} says ${expectedSize}; the blob or the descriptor is damaged: copy or export the image again`, options)
  }
}

export class OciBlobDigestMismatchError extends OciError {
  readonly code = 'OCI_BLOB_DIGEST_MISMATCH'
  override readonly name = 'OciBlobDigestMismatchError'

  /** `path` is relative to the layout (or the archive entry for `docker save` layers). */
  constructor (readonly path: string, readonly expectedDigest: string, readonly actualDigest: string, options?: ErrorOptions) {
    super(`${path} should hash to ${expectedDigest} but its bytes hash to ${actualDigest}; the file was changed or damaged: copy or export the image again`, options)
  }
}

/** The tar (or its gzip stream) ends before its end-of-archive marker. */
export class ArchiveTruncatedError extends OciError {
  readonly code = 'ARCHIVE_TRUNCATED'
  override readonly name = 'ArchiveTruncatedError'
}

/** Not a tar (bad header checksum) or a gzip stream that fails to decode mid-way. */
export class ArchiveCorruptError extends OciError {
  readonly code = 'ARCHIVE_CORRUPT'
  override readonly name = 'ArchiveCorruptError'
}

/** An entry path or link target that is absolute, has a `..` segment, a NUL, or leaves the tree. */
export class ArchiveUnsafePathError extends OciError {
  readonly code = 'ARCHIVE_UNSAFE_PATH'
  override readonly name = 'ArchiveUnsafePathError'

  constructor (readonly path: string, readonly reason: string, options?: ErrorOptions) {
    super(`archive entry ${JSON.stringify(path)} is refused: ${reason}; shoal only imports archives whose entries stay inside the image layout`, options)
  }
}

/** Neither an OCI layout archive nor a `docker save` archive, or an entry type shoal does not import. */
export class ArchiveUnsupportedError extends OciError {
  readonly code = 'ARCHIVE_UNSUPPORTED'
  override readonly name = 'ArchiveUnsupportedError'
}

/** packArchive: an entry's stream gave more or fewer bytes than its declared size (the file changed?). */
export class ArchiveEntrySizeMismatchError extends OciError {
  readonly code = 'ARCHIVE_ENTRY_SIZE_MISMATCH'
  override readonly name = 'ArchiveEntrySizeMismatchError'

  constructor (readonly path: string, readonly expectedSize: number, readonly actualSize: number, options?: ErrorOptions) {
    super(`archive entry ${JSON.stringify(path)} was declared as ${expectedSize} bytes but its content ${actualSize > expectedSize ? 'is longer' : `ended after ${actualSize} bytes`}; the source file changed while packing: try again`, options)
  }
}

/** The same path appears twice; which copy wins would depend on the reader. */
export class ArchiveDuplicateEntryError extends OciError {
  readonly code = 'ARCHIVE_DUPLICATE_ENTRY'
  override readonly name = 'ArchiveDuplicateEntryError'

  constructor (readonly path: string, options?: ErrorOptions) {
    super(`archive entry ${JSON.stringify(path)} appears more than once; tools disagree on which copy wins, so shoal refuses it: re-export the image`, options)
  }
}

/** extractArchive writes only into an absent or empty directory, so a failure can remove all it wrote. */
export class ArchiveDestinationNotEmptyError extends OciError {
  readonly code = 'ARCHIVE_DEST_NOT_EMPTY'
  override readonly name = 'ArchiveDestinationNotEmptyError'

  constructor (readonly destDir: string, options?: ErrorOptions) {
    super(`cannot extract into ${destDir}: it is not empty; pass a new or empty directory`, options)
  }
}

/** A tree sent to be unpacked holds more bytes than the receiver takes. */
export class ArchiveTooLargeError extends OciError {
  readonly code = 'ARCHIVE_TOO_LARGE'
  override readonly name = 'ArchiveTooLargeError'

  constructor (readonly maxBytes: number, options?: ErrorOptions) {
    super(`the tree holds more than ${maxBytes} bytes, more than this store takes (its --quota or free space); free space or raise the quota`, options)
  }
}
