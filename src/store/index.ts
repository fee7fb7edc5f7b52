import { Store, type StoreInit } from './store.js'

export async function openStore (init: StoreInit): Promise<Store> {
  return await Store.open(init)
}

export { Store, type StoreInit, type LoadedBundle } from './store.js'
export * from './errors.js'
export { MAX_PREHEAT_RECORDS, DIRECT_IO_ALIGN_BYTES, DIRECT_IO_SLAB_BUFFERS } from './constants.js'
export { AlignedBuffers } from './direct-io.js'
export type { PreheatRecordUpdate } from './preheat-records.js'
export type { HeardRefBounds, HeardRefEviction } from './heard-refs.js'
export type * from './types.js'
export { bundleOfTree, pushPath, pushTree, type PushOptions, type PushResult, type PushTreeOptions } from './push.js'
export { exportTree, exportArchive, streamBundle, requireCompleteBundle, BundleIncompleteError } from './export.js'
export { collectGarbage, enforceQuota, objectBytes, type GcResult } from './gc.js'
export { verifyStore, type VerifyReport, type BadObject } from './verify.js'
export { FileStore } from './file-store.js'
export { syncSnapshot, pushTreeTo, requireSnapdirId, type SyncEndpoint, type SyncResult, type SyncOptions } from './sync.js'
export { openEndpoint, defaultUploadJournalDir, type OpenedEndpoint, type EndpointInit } from './endpoint.js'
export { verifySnapshots } from './snapshot-verify.js'
export { BucketStore, type BucketStoreInit, type PutReport, type StoredSnapshot } from './bucket-store.js'
export { normalizeImageName, splitImageName, InvalidRefError } from './image-name.js'
export { StoreLayout, shardHash } from './layout.js'
export { GrowingFile, GrowingFileFailedError, type GrowingFileReader } from './growing-file.js'
export { diskFreeBytes } from './disk-room.js'
export type { HashedBlob } from './blob-hasher.js'
export { ingestBlobFile, ingestBlobBytes, BlobDigestMismatchError, type IngestedBlob, type IngestBlobOptions } from './blob-upload.js'
export { commitImageBundle, commitBlobBundle, foldBlobBundles, isBlobBundle, type ImageBlob, type ImageBundleOptions, type ImageBundleResult } from './image-bundle.js'
