/** Read and write in whole chunks: one buffer serves hashing, chunk tables and the copy. */
export const INGEST_BUFFER_BYTES = 1024 * 1024
/** Decoded bundle manifests kept in memory; a chunk write needs its bundle's chunk table. */
export const BUNDLE_CACHE_ENTRIES = 32
/**
 * A blob uploaded to the registry API is kept from gc this long while its manifest has not
 * arrived: as long as an idle upload session lives, so a slow pusher never loses blobs.
 */
export const UPLOAD_LEASE_MS = 60 * 60 * 1000
/**
 * Partial objects kept open while idle (one handle each). A pull writes a handful of objects
 * at once; beyond this the least recently used idle ones close, and reopen on their next chunk.
 */
export const MAX_OPEN_PARTIAL_FILES = 64
/**
 * Complete objects whose read handles a serving node keeps open. Each served chunk used to
 * open and close its object file; neighbours ask for chunks of a few objects at a time.
 */
export const MAX_OPEN_OBJECT_READERS = 64
/** An object read handle unused this long is closed (so gc'd files free their space soon). */
export const OBJECT_READER_IDLE_MS = 30_000
