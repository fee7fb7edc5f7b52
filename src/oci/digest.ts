import { join } from 'node:path'
import { OciUnsupportedDigestError } from './errors.js'

/** Where blobs live inside a layout (image-spec image-layout.md); sha256 is the only algorithm shoal accepts. */
export const BLOB_DIR = 'blobs/sha256'

const SHA256_DIGEST = /^sha256:([0-9a-f]{64})$/
const SHA256_HEX = /^[0-9a-f]{64}$/

/**
 * The hex of a `sha256:<hex>` digest. Anything else is refused: other algorithms are
 * legal in OCI but shoal indexes blobs by sha256, and uppercase hex would give one
 * blob two names (image-spec descriptor.md requires lowercase for sha256).
 */
export function sha256HexOf (digest: string, where: string): string {
  const match = SHA256_DIGEST.exec(digest)
  if (match?.[1] === undefined) throw new OciUnsupportedDigestError(digest, where)
  return match[1]
}

export function isSha256Hex (name: string): boolean {
  return SHA256_HEX.test(name)
}

/** Layout-relative path of a blob, e.g. `blobs/sha256/ab…`. */
export function blobRelPath (hex: string): string {
  return `${BLOB_DIR}/${hex}`
}

export function blobPath (layoutDir: string, hex: string): string {
  return join(layoutDir, BLOB_DIR, hex)
}
