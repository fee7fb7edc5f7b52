// The oci module's only import surface: OCI image layouts and image archives —
// parse, validate, import (extract), export (pack), refs. Error codes are stable;
// see errors.ts for what each one means.
export * from './media-types.js'
export { LAYOUT_DIR_MODE, LAYOUT_FILE_MODE, MAX_DESCRIPTOR_DEPTH, MAX_JSON_DOCUMENT_BYTES } from './constants.js'
export type { Descriptor, Platform } from './descriptor.js'
export {
  parseManifestDocument, servedMediaType, isImageDocument, STORABLE_MANIFEST_TYPES,
  type ManifestDocument, type ImageReference, type ParseManifestOptions,
} from './manifest-document.js'
export { walkImage, type ImageVisitor, type ImageWalkStep, type ImageWalkOptions } from './image-walk.js'
export {
  OciError, OciInvalidLayoutError, OciInvalidIndexError, OciInvalidManifestError, OciUnsupportedDigestError,
  OciBlobMissingError, OciBlobSizeMismatchError, OciBlobDigestMismatchError,
  ArchiveTruncatedError, ArchiveCorruptError, ArchiveUnsafePathError, ArchiveUnsupportedError,
  ArchiveDuplicateEntryError, ArchiveDestinationNotEmptyError, ArchiveEntrySizeMismatchError, ArchiveTooLargeError,
} from './errors.js'
export { isOciLayout, OCI_LAYOUT_FILE_BYTES } from './layout.js'
export { readRefs, type ImageRef } from './refs.js'
export { validateLayout, type ValidateLayoutOptions, type LayoutReport } from './validate.js'
export { extractArchive, type ExtractArchiveResult } from './archive-import.js'
export { extractTree, packTreeEntries, treeEntries, type ExtractedTree, type ExtractTreeOptions, type TreeTarEntry } from './tree-tar.js'
export { packArchive, type ArchiveEntry, type ArchiveFileEntry, type ArchiveDirectoryEntry } from './archive-export.js'
