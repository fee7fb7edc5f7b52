/**
 * Largest index.json, image index or image manifest we read into memory. The
 * distribution spec lets registries refuse manifests over 4 MiB, and real ones are
 * a few KiB; the limit keeps a hostile layout from exhausting memory.
 */
export const MAX_JSON_DOCUMENT_BYTES = 4 * 1024 * 1024

/** Largest legacy `docker save` manifest.json or image config we parse, same reason. */
export const MAX_DOCKER_SAVE_JSON_BYTES = 4 * 1024 * 1024

/**
 * Modes shoal gives every file and directory it writes, whatever the umask or the
 * archive says: a bundle's snapdir manifest records modes, so the same image must
 * get the same modes whichever way it arrived (layout dir, oci-archive, docker save).
 */
export const LAYOUT_FILE_MODE = 0o644
export const LAYOUT_DIR_MODE = 0o755

/** Descriptors nest (index → index → manifest); real images use two levels. */
export const MAX_DESCRIPTOR_DEPTH = 8

/** Read size for hashing and copying blobs. */
export const READ_CHUNK_BYTES = 1024 * 1024
