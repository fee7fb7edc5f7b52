export { CHUNK_SIZE_BYTES, MAX_MANIFEST_BYTES, MAX_MANIFEST_ENTRIES, BUNDLE_FORMAT_VERSION } from './constants.js'
export * from './errors.js'
export { checkManifestPath, comparePaths, parentPath } from './path-rules.js'
export { formatManifest, parseManifest, snapdirId, directoryChecksum, checkDirectoryChecksums, type ManifestEntry } from './snapdir-manifest.js'
export { walkTree, permsOf, type FileHasher, type HashedFile, type WalkOptions, type WalkWarning } from './tree-walk.js'
export {
  bundleIdOf, bundleObjects, chunkCount, chunkHashes, createBundleManifest, decodeBundleManifest, encodeBundleManifest,
  type BundleManifest, type BundleObject,
} from './bundle-manifest.js'
export { ChunkBitmap } from './chunk-bitmap.js'
