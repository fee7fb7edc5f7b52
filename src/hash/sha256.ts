import { createHash, type Hash } from 'node:crypto'

export type Sha256Hasher = Hash

export function createSha256 (): Sha256Hasher {
  return createHash('sha256')
}

export function sha256Hex (data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}
