import type { Store } from '../store/index.js'

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
}

/** The part of the daemon's logger this module uses. */
export interface HttpLogger {
  debug: (msg: string, fields?: Record<string, unknown>) => void
  info: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
  error: (msg: string, fields?: Record<string, unknown>) => void
}

export interface HttpApiComponents {
  store: Store
  blobSource?: BlobSource
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
  manifestFetchTimeoutMs?: number
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
