import { RecentMap } from '../recent/index.js'
import type { Store } from '../store/index.js'
import {
  BODY_IDLE_TIMEOUT_MS, CHUNK_STALL_TIMEOUT_MS, DEFAULT_MAX_BLOB_BYTES, DEFAULT_REGISTRY_HOST, FIRST_CHUNK_TIMEOUT_MS,
  MAX_UPLOAD_SESSIONS, RECENT_CHUNK_TABLES, UPLOAD_SESSION_IDLE_MS,
} from './constants.js'
import { RegistryError } from './errors.js'
import { parseRepositoryName, type RepositoryName } from './names.js'
import type { RequestContext } from './respond.js'
import type { BlobSource, ContentSources } from './sources.js'
import type { HttpApiComponents, HttpApiInit, HttpLogger } from './types.js'
import { UploadSessions } from './upload-sessions.js'

/** What every route handler works with: collaborators and settled tunables. */
export interface Registry {
  store: Store
  blobSource: BlobSource | undefined
  logger: HttpLogger | undefined
  allowPush: boolean
  defaultRegistry: string
  firstChunkTimeoutMs: number
  chunkStallTimeoutMs: number
  bodyIdleTimeoutMs: number
  uploads: UploadSessions
  /**
   * Chunk tables of objects uploaded lately, by object, kept for the manifest push that usually
   * follows within seconds, so building its bundle does not read every layer again. A table
   * that fell out is recomputed from the object (the store's commitImageBundle does that).
   */
  chunkTables: RecentMap<string, string[]>
  /** What misses locally is asked of these (the fleet, then an upstream), when the daemon gives any. */
  sources: ContentSources | undefined
}

export function createRegistry (components: HttpApiComponents, init: HttpApiInit): Registry {
  const chunkTables = new RecentMap<string, string[]>(RECENT_CHUNK_TABLES)
  const bodyIdleTimeoutMs = init.bodyIdleTimeoutMs ?? BODY_IDLE_TIMEOUT_MS
  return {
    store: components.store,
    blobSource: components.blobSource,
    logger: init.logger,
    allowPush: init.allowPush ?? false,
    defaultRegistry: init.defaultRegistry ?? DEFAULT_REGISTRY_HOST,
    firstChunkTimeoutMs: init.firstChunkTimeoutMs ?? FIRST_CHUNK_TIMEOUT_MS,
    chunkStallTimeoutMs: init.chunkStallTimeoutMs ?? CHUNK_STALL_TIMEOUT_MS,
    bodyIdleTimeoutMs,
    uploads: new UploadSessions(components.store, {
      maxSessions: MAX_UPLOAD_SESSIONS,
      idleMs: init.uploadSessionIdleMs ?? UPLOAD_SESSION_IDLE_MS,
      // A blob over the whole quota could never be kept: its upload is refused from its Content-Length.
      maxBlobBytes: Math.min(init.maxBlobBytes ?? DEFAULT_MAX_BLOB_BYTES, components.store.quotaBytes ?? Infinity),
      quotaBytes: components.store.quotaBytes,
      bodyIdleTimeoutMs,
      chunkTables,
    }),
    chunkTables,
    sources: components.sources,
  }
}

/** Edge nodes serve, gateways also take pushes (DESIGN.md "The local HTTP API"). */
export function requirePush (registry: Registry): void {
  if (!registry.allowPush) throw new RegistryError('UNSUPPORTED', 'this node does not accept pushes; push to the fleet\'s gateway, or start this daemon with pushes allowed')
}

/** The repository a request's path names, under the registry containerd's `?ns=` says, else this node's default. */
export function requestedName (ctx: RequestContext, registry: Registry, rawName: string): RepositoryName {
  return parseRepositoryName(rawName, ctx.url.searchParams.get('ns'), registry.defaultRegistry)
}
