/** Read and write in whole chunks: one buffer serves hashing, chunk tables and the copy. */
export const INGEST_BUFFER_BYTES = 1024 * 1024
/** Decoded bundle manifests kept in memory; a chunk write needs its bundle's chunk table. */
export const BUNDLE_CACHE_ENTRIES = 32
/**
 * A blob uploaded to the registry API is kept from gc this long while its manifest has not
 * arrived: as long as an idle upload session lives, so a slow pusher never loses blobs.
 */
export const UPLOAD_LEASE_MS = 60 * 60 * 1000
