/** The unit of transfer and verification (DESIGN.md: fixed 1 MiB slices). */
export const CHUNK_SIZE_BYTES = 1024 * 1024
/** DESIGN.md input rules: a bundle has at most this many entries… */
export const MAX_MANIFEST_ENTRIES = 1_000_000
/** …and its manifest text is at most this large. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024
/** The bundle manifest format this code writes; readers refuse others. */
export const BUNDLE_FORMAT_VERSION = 1
