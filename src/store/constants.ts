/** Read and write in whole chunks: one buffer serves hashing, chunk tables and the copy. */
export const INGEST_BUFFER_BYTES = 1024 * 1024
/**
 * Preheat records a node keeps (one per bundle). They travel to every neighbour on connect, so
 * the bound keeps that batch small (~400 bytes each); a cancelled one makes room when full.
 */
export const MAX_PREHEAT_RECORDS = 256
/**
 * Revisions `shoal revisions` keeps of a ref set by another publisher's records (the newest):
 * each record that moves a tag adds one, so a publisher retagging every minute added half a
 * million rows a year to every node. A node's own refs keep their whole history.
 */
export const MAX_HEARD_REF_REVISIONS = 64
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
 * Chunks that came before their predecessor, held in memory so an object's hash can go on
 * from memory once the gap fills (prefix-hash.ts): at most this many in the whole store, each
 * at most this many ahead of its object's prefix. One holder delivers in order and writes
 * overtake each other by a few chunks at most; chunks further ahead (a random order, another
 * holder's) were held until their commit for nothing, each a 1 MiB receive buffer.
 */
export const PREFIX_HOLD_CHUNKS = 8
/**
 * Complete objects whose read handles a serving node keeps open. Each served chunk used to
 * open and close its object file; neighbours ask for chunks of a few objects at a time.
 */
export const MAX_OPEN_OBJECT_READERS = 64
/** An object read handle unused this long is closed (so gc'd files free their space soon). */
export const OBJECT_READER_IDLE_MS = 30_000
/**
 * Part size for uploads to a bucket. 8 MiB is the AWS CLI's default multipart chunk size and
 * above S3's 5 MiB minimum; the memory a sync holds is about (parts in flight + objects read at
 * once) × this.
 */
export const BUCKET_PART_BYTES = 8 * 1024 * 1024
/** Part (and small-object) uploads in flight to one bucket; the AWS CLI's default is 10 requests. */
export const BUCKET_PARTS_IN_FLIGHT = 4
/** Part buffers kept for reuse: enough for every upload in flight and every object being read. */
export const SPARE_PARTS_KEPT = 8
/**
 * A one-blob bundle folded into its image's bundle while a client was reading it
 * (foldBlobBundles): the image's bundle counts as in use this long instead, as long as a
 * registry read's grace, so the quota does not evict under that client what the folded bundle
 * protected.
 */
export const FOLDED_IN_USE_GRACE_MS = 2 * 60 * 1000
/** Objects transferred at once by a sync. */
export const SYNC_OBJECT_CONCURRENCY = 4
/** HEAD requests in flight while a sync looks for what a bucket already has. */
export const BUCKET_HEAD_CONCURRENCY = 16
/** Objects a pull's room check looks up at once (Store.requireRoomForBundle): enough for an image's few, bounded for a tree of many files. */
export const OBJECT_STATE_CONCURRENCY = 16
/**
 * O_DIRECT reads and writes whole blocks at block offsets from memory aligned the same way:
 * 4 KiB is every current disk's logical block size or a multiple of it (512-byte sectors).
 */
export const DIRECT_IO_ALIGN_BYTES = 4096
/**
 * Aligned chunk buffers made at a time (direct-io.ts AlignedBuffers): a chunk's direct write
 * holds one from its copy until the write returns, a direct read until it is copied out. The
 * swarm keeps at most 16 chunks waiting for the store (MAX_BUFFERED_CHUNKS).
 */
export const DIRECT_IO_SLAB_BUFFERS = 4
/**
 * Aligned buffers a staging file written with O_DIRECT keeps after writing them
 * (direct-staging-bytes.ts), so readers a few MiB behind its writer (a fleet-blob sender, a
 * containerd response) copy from memory instead of reading the disk: 4 MiB per blob arriving.
 */
export const STAGING_RECENT_BUFFERS = 4
/**
 * Aligned chunk buffers lent to readers at once (Store.lendReadBuffer: four responses of
 * SEND_BUFFERS each): they stay the store's for good once made (a WebAssembly.Memory does not
 * shrink), so past this a reader fills memory of its own and the direct read is copied into it.
 */
export const MAX_LENT_READ_BUFFERS = 16
/**
 * Objects this node wrote with O_DIRECT whose reads skip the page cache too (object-readers.ts
 * `readDirect`): the latest a pull completed, which a client or a neighbour reads next.
 */
export const MAX_DIRECT_READ_OBJECTS = 1024

/**
 * Chunk tables of objects a pull completed here, each verified chunk by chunk on its way in
 * (Store.verifiedChunkTable): an image made a bundle right after its pull (image-assembler.ts)
 * takes them instead of reading the object back. ~65 bytes a MiB of object each.
 */
export const VERIFIED_CHUNK_TABLES = 64
