import { CodedError } from '../errors/index.js'

/** Base of every manifest error: callers branch on `code`. */
export class ManifestError extends CodedError {
  override name = 'ManifestError'
}

export class UnsafePathError extends ManifestError {
  constructor (path: string, why: string) {
    super('MANIFEST_UNSAFE_PATH', `refusing path ${JSON.stringify(path)}: ${why}; a bundle may only name relative paths inside its own tree`)
    this.name = 'UnsafePathError'
  }
}

export class DuplicatePathError extends ManifestError {
  constructor (path: string) {
    super('MANIFEST_DUPLICATE_PATH', `path ${JSON.stringify(path)} appears twice in the manifest; a manifest names each path once — regenerate it with \`shoal manifest\``)
    this.name = 'DuplicatePathError'
  }
}

export class ManifestSyntaxError extends ManifestError {
  constructor (line: number, why: string) {
    super('MANIFEST_SYNTAX', `manifest line ${line}: ${why}; expected "TYPE PERMS CHECKSUM SIZE PATH" as \`shoal manifest\` writes it`)
    this.name = 'ManifestSyntaxError'
  }
}

export class ManifestTooLargeError extends ManifestError {
  constructor (what: string, limit: number) {
    super('MANIFEST_TOO_LARGE', `manifest has more than ${limit} ${what}; split the tree into several bundles`)
    this.name = 'ManifestTooLargeError'
  }
}

export class SymlinkEscapeError extends ManifestError {
  constructor (path: string, target: string) {
    super('MANIFEST_SYMLINK_ESCAPES', `symlink ${JSON.stringify(path)} points to ${JSON.stringify(target)}, outside the tree; replace it with a copy or a link inside the tree`)
    this.name = 'SymlinkEscapeError'
  }
}

export class BundleManifestError extends ManifestError {
  constructor (why: string, options?: ErrorOptions) {
    super('BUNDLE_MANIFEST_INVALID', `invalid bundle manifest: ${why}`, options)
    this.name = 'BundleManifestError'
  }
}

export class BundleIdMismatchError extends ManifestError {
  constructor (expected: string, actual: string) {
    super('BUNDLE_ID_MISMATCH', `bundle manifest hashes to ${actual}, not the ${expected} that was asked for; the sender is faulty or lying`)
    this.name = 'BundleIdMismatchError'
  }
}
