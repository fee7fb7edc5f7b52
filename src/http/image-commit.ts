import { isImageDocument, walkImage, type ImageReference, type ManifestDocument } from '../oci/index.js'
import { commitImageBundle, ingestBlobBytes, type ImageBlob, type ImageBundleResult, type Store } from '../store/index.js'
import { MAX_MANIFEST_BYTES } from './constants.js'
import { RegistryError } from './errors.js'
import { parseManifestDocument } from './manifest-document.js'

export interface ImageCommit {
  /** Full image name with its tag: `docker.io/library/alpine:3.19`. */
  ref: string
  /** The manifest or index itself, its bytes already checked against `hex`. */
  bytes: Buffer
  hex: string
  document: ManifestDocument
  /** Every blob and child manifest the document names (imageBlobs). */
  blobs: ImageBlob[]
  chunkTables?: Pick<ReadonlyMap<string, string[]>, 'get'>
  /** The tag is the fleet's word, not this node's (ImageBundleOptions.local). */
  local?: boolean
  signal: AbortSignal
}

/**
 * Makes an image whose blobs are all in the store a bundle: the manifest is stored as an
 * object (a no-op when it already is) and the store writes an OCI image layout of it with the
 * ref pointing at it. Shared by a manifest push and by pull-through, so an image is the same
 * bundle (the same ID) whichever way it came in.
 */
export async function commitImage (store: Store, image: ImageCommit): Promise<ImageBundleResult> {
  const stored = await ingestBlobBytes(store, image.bytes, { sha256: image.hex, signal: image.signal })
  return await commitImageBundle(store, {
    ref: image.ref,
    manifest: { mediaType: image.document.mediaType, digest: `sha256:${image.hex}`, size: image.bytes.length },
    blobs: [{ sha256: image.hex, object: stored.object, size: stored.size }, ...image.blobs],
    chunkTables: image.chunkTables,
    local: image.local,
    signal: image.signal,
  })
}

/**
 * Every blob the document names, children of an index followed down to their layers, each
 * a complete object of the size its descriptor says. All missing ones are reported at once
 * (distribution-spec: one MANIFEST_BLOB_UNKNOWN per blob, the digest in `detail`).
 */
export async function imageBlobs (store: Store, document: ManifestDocument): Promise<ImageBlob[]> {
  const found: ImageBlob[] = []
  const missing: string[] = []
  await walkImage(document, async (reference, { parent }) => {
    const blob = await heldBlob(store, reference)
    if (blob === undefined) {
      missing.push(reference.digest)
      return undefined
    }
    found.push(blob)
    return parent.kind === 'index' && isImageDocument(reference) ? await childDocument(store, reference, blob) : undefined
  }, { fail: message => new RegistryError('MANIFEST_INVALID', message) })
  if (missing.length > 0) {
    throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `the manifest names ${missing.length} blob(s) not pushed here: ${missing.join(', ')}; push them first`, { detail: { digest: missing[0], missing } })
  }
  return found
}

/** A blob a descriptor names, when it is a complete object here of the size the descriptor says (else MANIFEST_INVALID). */
export async function heldBlob (store: Store, reference: ImageReference): Promise<ImageBlob | undefined> {
  const held = await store.wholeObjectBySha256(reference.hex)
  if (held === undefined) return undefined
  const { hash: object, size } = held
  if (size !== reference.size) {
    throw new RegistryError('MANIFEST_INVALID', `${reference.digest} is ${size} bytes here, the manifest says ${reference.size}`, { detail: { digest: reference.digest, size, declared: reference.size } })
  }
  return { sha256: reference.hex, object, size }
}

/** A child manifest of an index, held here: its bytes (checked against its digest when stored), parsed. */
async function childDocument (store: Store, reference: ImageReference, blob: ImageBlob): Promise<ManifestDocument> {
  if (blob.size > MAX_MANIFEST_BYTES) throw new RegistryError('MANIFEST_INVALID', `child manifest ${reference.digest} is over ${MAX_MANIFEST_BYTES} bytes`)
  // Undefined also when the file went (gc) since heldBlob saw it: either way it is not usable here.
  const bytes = await store.readDocument(blob.sha256, MAX_MANIFEST_BYTES)
  if (bytes === undefined) throw new RegistryError('MANIFEST_INVALID', `child manifest ${reference.digest} is damaged in this store; push it again`)
  return parseManifestDocument(bytes, reference.mediaType, `child manifest ${reference.digest}`)
}
