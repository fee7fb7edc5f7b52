import type { Store } from '../store/index.js'
import type { RepositoryName, Sha256Digest } from './names.js'

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
   * the swarm's PullOptions.firstObjects).
   */
  fetchBundle?: (bundleId: string, options: { signal: AbortSignal, firstObjects?: (signal: AbortSignal) => Promise<readonly string[]> }) => Promise<void>
}

/** The part of the daemon's logger this module uses. */
export interface HttpLogger {
  debug: (msg: string, fields?: Record<string, unknown>) => void
  info: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
  error: (msg: string, fields?: Record<string, unknown>) => void
}

/**
 * An origin registry for pull-through (src/upstream implements it; the daemon wires it). It
 * fetches into the store; PullThrough decides what to ask and the assembler makes bundles.
 */
export interface UpstreamSource {
  /** Whether requests naming this registry host may be forwarded to the upstream. */
  serves: (registryHost: string) => boolean
  /** Fetches, verifies and stores a manifest by tag or digest (an index with its child manifests). */
  fetchManifest: (repository: string, reference: string, options: { signal: AbortSignal }) => Promise<UpstreamManifest>
  /** Fetches a blob into the store, verified against its digest (and size, when given). */
  fetchBlob: (repository: string, digest: string, options: { signal: AbortSignal, size?: number }) => Promise<void>
  /** The same fetch, read as it arrives (see IncomingBlob); a blob already held reads from the store. */
  openBlob: (repository: string, digest: string, options: { signal: AbortSignal, size?: number }) => Promise<IncomingBlob>
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

export interface UpstreamManifest {
  mediaType: string
  /** `sha256:<hex>` of the bytes stored. */
  digest: string
  size: number
  /** Configs and layers the image names (of every child of an index). */
  blobs: Array<{ digest: string, size: number }>
}

/** Where a tag points. */
export interface ResolvedTag {
  digest: Sha256Digest
  /** The bundle a ref here names, when the tag came from one (its manifest may still be in the swarm). */
  bundleId?: string
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
   * it; throws a RegistryError when a source failed.
   */
  locate: (name: RepositoryName, digest: Sha256Digest, options: { signal: AbortSignal, manifest: boolean }) => Promise<boolean | IncomingBlob>
}

/** An image pull-through made into a bundle. */
export interface PulledThroughImage {
  ref: string
  bundleId: string
  digest: string
  seconds: number
}

export interface HttpApiComponents {
  store: Store
  blobSource?: BlobSource
  sources?: ContentSources
}

/** Tunables; every one has a default in constants.ts. */
export interface HttpApiInit {
  /** Accept pushes (uploads and manifest PUTs). Off by default: edge nodes only serve. */
  allowPush?: boolean
  /** Registry host for a name whose first component is not a host (default `localhost`). */
  defaultRegistry?: string
  logger?: HttpLogger
  maxBlobBytes?: number
  firstChunkTimeoutMs?: number
  chunkStallTimeoutMs?: number
  bodyIdleTimeoutMs?: number
  uploadSessionIdleMs?: number
}

export interface HttpApi {
  /** A node:http request handler, for a daemon that mounts the API in its own server. */
  handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void
  /** Starts a server of our own; port 0 picks a free one, returned here. */
  listen: (host: string, port: number) => Promise<{ host: string, port: number }>
  /** Stops accepting, aborts requests in flight, drops upload sessions. */
  close: () => Promise<void>
}
