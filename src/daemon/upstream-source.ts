import type { IncomingBlob } from '../http/index.js'
import type { FetchedManifest } from '../upstream/index.js'

/**
 * What pull-through asks of an origin registry: src/upstream's Upstream is the one the daemon
 * wires; declared here, by its user, so a test can hand PullThrough another. It fetches into the
 * store; PullThrough decides what to ask and the assembler makes bundles.
 */
export interface UpstreamSource {
  /** Whether requests naming this registry host may be forwarded to the upstream. */
  serves: (registryHost: string) => boolean
  /** Fetches, verifies and stores a manifest by tag or digest (an index with its child manifests). */
  fetchManifest: (repository: string, reference: string, options: { signal: AbortSignal }) => Promise<FetchedManifest>
  /** Fetches a blob into the store, verified against its digest (and size, when given). */
  fetchBlob: (repository: string, digest: string, options: { signal: AbortSignal, size?: number }) => Promise<void>
  /** The same fetch, read as it arrives (see IncomingBlob); a blob already held reads from the store. */
  openBlob: (repository: string, digest: string, options: { signal: AbortSignal, size?: number }) => Promise<IncomingBlob>
}
