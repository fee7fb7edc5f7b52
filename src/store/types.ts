import type { Readable } from 'node:stream'
import type { BundleManifest, ChunkBitmap } from '../manifest/index.js'
import type { DirectIoRefusal } from './direct-io.js'

/** What the store knows of one object right now. */
/**
 * Keeps a chunk's bytes valid past the call that was given them, until the function it returns
 * is called: the writer reuses the memory only once every keeper let go (a response sends a
 * verified chunk from the memory it arrived in, with no copy).
 */
export type KeepBytes = () => () => void

export type ObjectState =
  | { state: 'complete' }
  | { state: 'partial', bitmap: ChunkBitmap }
  | { state: 'missing' }

export interface BundleSummary {
  id: string
  /** The snapdir ID of the bundle's tree: what snapdir's own tools call it. */
  snapdirId: string
  /** Distinct objects and their total bytes. */
  objects: number
  bytes: number
  /** Bytes of verified chunks held, complete objects included. */
  presentBytes: number
  complete: boolean
  pinned: boolean
  refs: string[]
  createdAt: number
  lastUsedAt: number
}

export interface RefTarget {
  bundleId: string
  /** `sha256:…` of the OCI manifest or index the ref names, when the bundle is an image. */
  manifestDigest?: string
  /** For a ref set by a signed record: its sequence (newer records only) and publisher. */
  sequence?: number
  publisher?: string
  /**
   * Set here from what the fleet said, not by this node's operator or upstream: an image
   * assembled from a tag a trusted peer resolved. Never signed nor sent to neighbours, and any
   * trusted publisher's record for the ref replaces it (docs/architecture.md, "Refs an edge
   * makes by assembling").
   */
  local?: boolean
}

/** A signed ref record as the swarm verified it; the store keeps the newest per ref. */
export interface SignedRefUpdate {
  ref: string
  bundleId: string
  manifestDigest?: string
  sequence: number
  /** The publisher as a peer ID (`12D3Koo…`), the form `--trust` takes. */
  publisher: string
  /** The record's bytes as they travel, kept to hand on to neighbours unchanged. */
  signed: Uint8Array
}

export interface RefRevision extends RefTarget {
  ref: string
  at: number
}

/** Events a store emits; the swarm turns them into have-list updates. */
export interface StoreEvents {
  'chunk:stored': { object: string, index: number }
  /**
   * A chunk passed its hash check and goes to its file now: not yet durable, not yet held
   * (nothing may announce or count it; 'chunk:stored' says that). `bytes` is the writer's
   * memory, valid only during the call unless `keep` (when the writer offers it) holds it: a
   * listener copies or keeps what it needs later. The registry API may send it to a client
   * waiting on the object from here instead of reading it back once it is durable.
   */
  'chunk:verified': { object: string, index: number, bytes: Uint8Array, keep?: KeepBytes }
  /**
   * `rereadBytes`: how much of the object was read back from its file to hash it whole (0 when
   * its chunks were hashed in order as they arrived; see PartialObjects).
   */
  'object:complete': { object: string, rereadBytes?: number }
  'bundle:added': { id: string }
  'bundle:removed': { id: string }
  /** Nothing uses the bundle any more (`useBundle`, after its grace): the quota may have it now. */
  'bundle:released': { id: string }
  /** Bundles the quota evicted ahead of a pull (`for` says of what), to make the room it lacked on the disk (Store.requireRoomForBundle). */
  'quota:evicted': { ids: string[], for: string }
  /**
   * A trusted signed record from the fleet was accepted for a ref; `previous` is the bundle the
   * ref named before, if any (the same one when only the record's sequence rose).
   */
  'ref:updated': { ref: string, bundleId: string, previous?: string, publisher?: string }
  /**
   * A ref was set on this node (a push, a registry push, a pull-through, or an image assembled
   * from a tag the fleet resolved, `local`); `previous` as above. The node signs and publishes
   * it unless it is `local` (RefTarget.local).
   */
  'ref:set': { ref: string, bundleId: string, manifestDigest?: string, previous?: string, local?: boolean }
  /**
   * A ref another publisher's record set was dropped, with its record and history: that
   * publisher (`why: 'publisher'`) or all others together (`'total'`) were over their bound
   * (Store.acceptRefRecord).
   */
  'ref:evicted': { ref: string, bundleId: string, publisher: string, why: 'publisher' | 'total' }
  /**
   * The filesystem refused O_DIRECT after the store's probe had passed (direct-io.ts
   * DirectIoMode): chunks go through the page cache from then on. Emitted once per store.
   */
  'direct-io:refused': DirectIoRefusal
}

export interface ChunkWriteResult {
  /** False when the chunk was already held (nothing written). */
  stored: boolean
  /** True when this write completed the object (it is now in objects/). */
  objectComplete: boolean
}

export interface ReadOptions { signal?: AbortSignal }

export type { Readable }
export type { BundleManifest }
