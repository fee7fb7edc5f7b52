import type { Store } from '../store/index.js'
import type { BlobSource, ContentSources } from './sources.js'

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
