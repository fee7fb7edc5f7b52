/**
 * Limits of the upstream (origin registry) client. Each one bounds what a slow, broken or
 * hostile origin can make a node hold: time, memory, disk.
 */

/** Time to the response headers of one upstream request (manifest, token, blob): a dead origin fails fast. */
export const UPSTREAM_HEADERS_TIMEOUT_MS = 20 * 1000

/** A blob body that sends nothing for this long is cut off and the fetch fails (it can be asked again). */
export const UPSTREAM_BODY_IDLE_TIMEOUT_MS = 60 * 1000

/**
 * A blob's body goes into its staging file in writes of about this much (body-batches.ts): the
 * size of a fleet-blob DATA frame and of a reader's step, so one write feeds one step of each
 * reader downstream instead of sixteen 64 KiB ones.
 */
export const UPSTREAM_WRITE_BATCH_BYTES = 1024 * 1024
/**
 * The longest a piece of a blob waits in memory for a write batch to fill: a registry at
 * 100 MB/s fills one in 10 ms, and a slow one's first byte reaches the fleet this much later at most.
 */
export const UPSTREAM_WRITE_BATCH_WAIT_MS = 10

/**
 * distribution-spec "Pushing Manifests": registries accept manifests of at least 4 MiB; real
 * ones are a few KiB. A manifest is the only thing read whole into memory.
 */
export const MAX_UPSTREAM_MANIFEST_BYTES = 4 * 1024 * 1024

/** A token response is a small JSON document. */
export const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024

/** A blob whose size no descriptor gives (a blob asked for by digest alone) may be at most this large. */
export const DEFAULT_MAX_UPSTREAM_BLOB_BYTES = 64 * 1024 * 1024 * 1024

/** Registries redirect blob reads to object storage; more hops than this is a loop. */
export const MAX_REDIRECTS = 5

/** Indexes nest (index → index → manifest); real images use two levels (same limit as src/oci). */
export const MAX_INDEX_DEPTH = 8

/** Blobs of one image fetched at once: enough to keep a link busy, few enough to start layers early. */
export const IMAGE_BLOB_CONCURRENCY = 3

/**
 * distribution "token authentication": a token without `expires_in` is valid for 60 s. We
 * renew this much earlier so a token never expires between check and use.
 */
export const DEFAULT_TOKEN_LIFETIME_S = 60
export const TOKEN_RENEW_MARGIN_MS = 10 * 1000

/** Tokens kept (one per repository scope); beyond that the oldest is dropped. */
export const MAX_CACHED_TOKENS = 256

/** Docker Hub's registry answers for the `docker.io` namespace that clients and containerd use. */
export const DOCKER_HUB_HOSTS = ['registry-1.docker.io', 'index.docker.io', 'docker.io']
export const DOCKER_HUB_NAMESPACE = 'docker.io'
