import type { RepositoryName, Sha256Digest } from './names.js'

// What the registry asks of the rest of the node for bytes that are not in the store: declared
// here, by their user, and implemented by the daemon (src/daemon/content-sources.ts,
// blob-source.ts), which imports them: imports point daemon → http, never back.

/**
 * Where blobs that are not here yet come from (the swarm implements it; the daemon wires
 * it). One small contract, as Helia's block sources: the HTTP API knows nothing of peers.
 */
export interface BlobSource {
  /**
   * Fetches one object of a bundle into the store, chunk by chunk (each chunk written with
   * `store.writeChunk`, so `chunk:stored` fires as it arrives). Resolves once
   * `store.hasObject(object)` is true; rejects when the object cannot be had.
   */
  fetchObject: (bundleId: string, object: string, options: { signal: AbortSignal }) => Promise<void>
  /**
   * Fetches a bundle's manifest into the store, for a tag known only from a signed ref
   * record (an edge that has never held the image). Resolves once `store.getBundle` has it.
   * The pull it starts goes on; `firstObjects` names what it fetches first, in order (see
   * the swarm's PullOptions.firstObjects). `wanted` is asked once the description is here,
   * before that pull's first chunk request: false stops it with nothing fetched (a bundle a
   * peer named that turns out not to be what it was named for). A pull already under way
   * when this is called is joined and never stopped: others want it.
   */
  fetchBundle?: (bundleId: string, options: { signal: AbortSignal, firstObjects?: (signal: AbortSignal) => Promise<readonly string[]>, wanted?: (signal: AbortSignal) => Promise<boolean> }) => Promise<void>
}

/**
 * A blob still on its way here (from this node's upstream, or from the fleet's pull-through
 * node), read in order as it arrives. Its last byte is given only once the whole blob matched
 * its sha256, so a response that forwards it cannot complete with bytes that failed; a source
 * that fails mid-way makes `read` throw. `close` it however the read ends.
 */
export interface IncomingBlob {
  /** Its size in bytes, when the source said. */
  size: number | undefined
  /**
   * Bytes [start, end) in order, each step's as fresh pieces; throws when the source fails,
   * `stallMs` passes with nothing new, or `signal` aborts.
   */
  read: (options: { start?: number, end?: number, stallMs: number, signal: AbortSignal }) => AsyncIterable<Uint8Array[]>
  /** The next bytes at `position` (before `end`) into `into`, once some are here; how many, 0 at the end. Throws as `read` does. */
  readInto: (into: Uint8Array, options: { position: number, end?: number, stallMs: number, signal: AbortSignal }) => Promise<number>
  /** Bytes (from the first) readable now without waiting, when the source can tell. */
  held?: () => number
  close: () => Promise<void>
}

/**
 * A source that failed a request before the response's first byte: the bundle the fleet named
 * for a blob or a manifest (or a ref here names), whose pull here brought nothing (no holder
 * answered, the holder lied and was banned, the pull was stopped). `locate` then asks the
 * sources after it, in its order, rather than the client hearing 404 and going to the far
 * registry (issue 8: the registry once).
 */
export interface FailedSource {
  /** Which source, as a person reads it in the log. */
  source: 'fleet-bundle'
  /** Why it failed, from its error. */
  reason: string
}

/** Where a tag points. */
export interface ResolvedTag {
  digest: Sha256Digest
  /** The bundle a ref here names, when the tag came from one (its manifest may still be in the swarm). */
  bundleId?: string
  /** Who set the ref here (RefTarget): a signed record's publisher, or `local` for a ref made from what the fleet said; neither for this node's own. */
  publisher?: string
  local?: boolean
  /**
   * The manifest's bytes, checked against `digest`, when a source has them before the store does
   * (a recorded tag's manifest handed over by the fleet): answered from them while the store
   * writes them, so the write is not on the client's critical path (a request for the digest
   * meanwhile is answered from them too: ContentSources.manifestBeingStored).
   */
  manifest?: Buffer
}

/**
 * Every place bytes come from beyond the local store, in one order the daemon writes once
 * (src/daemon/content-sources.ts: the fleet, the fleet's pull-through, then this node's own
 * upstream). The registry routes ask it on a local miss and keep only the protocol.
 */
export interface ContentSources {
  /**
   * Where a tag points now. `held` is what the store's ref says (undefined without one).
   * Resolves undefined when no source knows the tag (a 404); the manifest is in the store, or
   * named by a bundle here, when it resolves. Throws a RegistryError when a source failed.
   */
  resolveTag: (name: RepositoryName, tag: string, held: ResolvedTag | undefined, options: { signal: AbortSignal }) => Promise<ResolvedTag | undefined>
  /**
   * A manifest or blob the store does not know: made known here, whole or as an object of a
   * bundle whose chunks are on the way (the blob source streams those), or, for a blob, handed
   * over as it arrives from a pull-through (an IncomingBlob). Resolves false when no source has
   * it; throws a RegistryError when a source failed. With `failed`, the sources up to that one
   * are not asked again: the next in order are. `refBundle`: the bundle a ref here names for the
   * tag this manifest was asked by, asked for first (a signed record's, known before the fleet's
   * answer).
   */
  locate: (name: RepositoryName, digest: Sha256Digest, options: { signal: AbortSignal, manifest: boolean, failed?: FailedSource, refBundle?: string }) => Promise<boolean | IncomingBlob>
  /**
   * A manifest's bytes (checked against `digest`) that a source handed over and the store is
   * still writing: containerd's GET of the digest comes right after its HEAD of the tag, and the
   * store's index may already name the object (the bundle's description) before it is written.
   */
  manifestBeingStored?: (digest: Sha256Digest) => Buffer | undefined
}
