/**
 * distribution-spec "Pushing Manifests": registries SHOULD accept manifests of at least
 * 4 MiB and MAY refuse larger ones; real manifests are a few KiB. Also the most we read
 * into memory to learn a stored manifest's media type.
 */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/** Largest blob an upload session accepts; far above any real layer, but finite so a runaway client cannot fill the disk. */
export const DEFAULT_MAX_BLOB_BYTES = 64 * 1024 * 1024 * 1024

/** Upload sessions open at once; each holds a staging file and a hasher. */
export const MAX_UPLOAD_SESSIONS = 64

/** An upload nobody touched for this long is dropped with its staging file (the spec lets uploads time out). */
export const UPLOAD_SESSION_IDLE_MS = 15 * 60 * 1000

/** A request body that sends nothing for this long is cut off, so a stalled client never holds a session. */
export const BODY_IDLE_TIMEOUT_MS = 60 * 1000

/**
 * How long a blob that is still arriving may wait for its first chunk, with no chunk of its
 * bundle arriving meanwhile, before we answer 404. DESIGN.md "fail fast": containerd then
 * tries the next host (the upstream) instead of waiting; a pull busy with the bundle's other
 * objects first is progress, not a reason (ArrivingObject).
 */
export const FIRST_CHUNK_TIMEOUT_MS = 10 * 1000

/**
 * Once a body has started, how long we wait for the next chunk before cutting the response.
 * containerd waits minutes on a stalled body; cutting it makes it retry with `Range`.
 */
export const CHUNK_STALL_TIMEOUT_MS = 60 * 1000

/**
 * A request we answered before taking its body (refused: too large, denied, unknown upload):
 * the rest of its body is read and thrown away up to this many bytes or this long, so the
 * client, still sending, reads the answer instead of a reset (request-body.ts). A client stops
 * sending once it reads the answer; these bound one that does not.
 */
export const REFUSED_BODY_DRAIN_BYTES = 64 * 1024 * 1024
export const REFUSED_BODY_DRAIN_MS = 10 * 1000

/** A socket with no traffic either way for this long is closed (node's `server.timeout`). */
export const SOCKET_IDLE_TIMEOUT_MS = 2 * 60 * 1000

/** Most tags or repositories one page lists, whatever `n` asks for (the Link header says there is more). */
export const MAX_PAGE_ENTRIES = 1000

/** What a push without a registry host in its name is filed under (`/v2/team/app` → `localhost/team/app`). */
export const DEFAULT_REGISTRY_HOST = 'localhost'

/** Uploaded objects whose chunk tables are kept in memory for the manifest push that follows. */
export const RECENT_CHUNK_TABLES = 256

/** Read size for serving complete objects; one chunk keeps syscalls few without holding much memory. */
export const READ_HIGH_WATER_MARK_BYTES = 1024 * 1024

/**
 * Buffers of READ_HIGH_WATER_MARK_BYTES each a blob response sends from (BodyWriter): one is
 * read into while the others are with the socket, so the socket never waits on a read and a
 * response holds 4 MiB at most, whatever the blob's size.
 */
export const SEND_BUFFERS = 4

/**
 * Verified chunks an arriving blob's response may hold in the memory they arrived in until its
 * socket has sent them (CaughtChunks' `kept`): as many as an object lane lets wait on its store
 * and its readers (the swarm's MAX_BUFFERED_CHUNKS, 16), so the lane stops reading before the
 * response would have to let a chunk go to the file. With fewer, a response behind the lane
 * read every later chunk back from the file: 513 of 513 chunks of a 512 MiB layer, 2.3 s of
 * reads, the response done 1.5 s after the object (bench-containerd, 2026-12-07 20:32).
 */
export const KEPT_VERIFIED_CHUNKS = 16

/**
 * After a registry client's request for a bundle's manifest or blob ends, the bundle stays in
 * use this long, so the quota does not evict it between the client's requests: containerd
 * fetches the manifest, then the config, then the layers (three at a time), each a request
 * of its own; while any of them streams the bundle is in use anyway.
 */
export const REGISTRY_READ_GRACE_MS = 2 * 60 * 1000
