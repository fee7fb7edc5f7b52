import type { Sha256Digest } from '../http/index.js'
import type { Store } from '../store/index.js'

/** What a bundle's description files under an image manifest's digest: judged before any chunk of the bundle is asked for. */
export interface ManifestFiling {
  /** It files the manifest there (its bytes, when they are known). */
  holds: boolean
  /** For a person, what it files there: nothing, other bytes, or the manifest. */
  held: string
  /** How many blobs the bundle files in all, and their bytes: what pulling it would have fetched. */
  blobs: number
  bytes: number
}

const BLOB_PATH = /^\.\/blobs\/sha256\/[0-9a-f]{64}$/

/**
 * Whether `bundleId`'s description (here already) files the manifest `digest` under
 * `blobs/sha256/<hex>`: as the object `manifestObject` (the BLAKE3 of bytes checked against the
 * digest: another object there is other bytes filed under its name), or, when those bytes are
 * not known, as any object. Undefined when the description is not here.
 */
export async function manifestFiling (store: Store, bundleId: string, digest: Sha256Digest, manifestObject?: string): Promise<ManifestFiling | undefined> {
  const bundle = await store.loadBundle(bundleId)
  if (bundle === undefined) return undefined
  const files = bundle.manifest.entries.filter(e => e.type === 'F' && BLOB_PATH.test(e.path))
  const entry = files.find(e => e.path === `./blobs/sha256/${digest.hex}`)
  const blobs = { blobs: files.length, bytes: files.reduce((sum, e) => sum + e.size, 0) }
  if (entry === undefined) return { holds: false, held: `no blob under ${digest.digest}`, ...blobs }
  if (manifestObject !== undefined && entry.checksum !== manifestObject) {
    return { holds: false, held: `other bytes under ${digest.digest} (object ${entry.checksum}, ${entry.size} bytes; the manifest's bytes are object ${manifestObject})`, ...blobs }
  }
  return { holds: true, held: `the manifest under ${digest.digest}`, ...blobs }
}
