import { open } from 'node:fs/promises'
import { sha256Hex } from '../hash/index.js'
import { isIndexMediaType, isManifestMediaType } from '../oci/index.js'
import { commitImageBundle, ingestBlobBytes, type ImageBlob, type Store } from '../store/index.js'
import { MAX_MANIFEST_BYTES } from './constants.js'
import { RegistryError } from './errors.js'
import { parseManifestDocument, type ManifestDocument, type Reference } from './manifest-document.js'
import { imageRefOf, parseReference, parseRepositoryName } from './names.js'
import { requirePush, type Registry } from './registry.js'
import { readBody } from './request-body.js'
import { sendEmpty, type RequestContext } from './respond.js'

/** Indexes nest (index → index → manifest); real images use two levels (same limit as src/oci). */
const MAX_INDEX_DEPTH = 8

/**
 * `PUT /v2/<name>/manifests/<tag|digest>`. The manifest is checked (size, JSON, media type,
 * every blob and child manifest it names held here with the size it says), stored as an
 * object, and, for a tag, made into a bundle that is an OCI image layout of the image with
 * the ref pointing at it. A digest push stores the manifest only, for an index pushed next
 * to name (that is how skopeo pushes a multi-platform image).
 */
export async function putManifest (ctx: RequestContext, registry: Registry, rawName: string, rawReference: string): Promise<void> {
  requirePush(registry)
  const name = parseRepositoryName(rawName, ctx.url.searchParams.get('ns'), registry.defaultRegistry)
  const reference = parseReference(rawReference)
  const bytes = await readBody(ctx.req, {
    maxBytes: MAX_MANIFEST_BYTES,
    idleTimeoutMs: registry.bodyIdleTimeoutMs,
    signal: ctx.signal,
    tooLarge: () => new RegistryError('MANIFEST_INVALID', `a manifest may be at most ${MAX_MANIFEST_BYTES} bytes`),
  })
  const hex = sha256Hex(bytes)
  const digest = `sha256:${hex}`
  if (reference.kind === 'digest' && reference.digest.hex !== hex) {
    throw new RegistryError('DIGEST_INVALID', `the manifest hashes to ${digest}, not ${reference.digest.digest}`, { detail: { digest: reference.digest.digest, actual: digest } })
  }
  const document = parseManifestDocument(bytes, ctx.req.headers['content-type'])
  const blobs = await imageBlobs(registry.store, document, 0)
  const stored = await ingestBlobBytes(registry.store, bytes, { sha256: hex, signal: ctx.signal })
  if (reference.kind === 'tag') {
    const result = await commitImageBundle(registry.store, {
      ref: imageRefOf(name, reference.tag),
      manifest: { mediaType: document.mediaType, digest, size: bytes.length },
      blobs: [{ sha256: hex, object: stored.object, size: stored.size }, ...blobs],
      chunkTables: registry.chunkTables,
      signal: ctx.signal,
    })
    registry.logger?.info('image pushed', { ref: result.revision.ref, digest, bundleId: result.bundleId, newBundle: result.created })
  }
  sendEmpty(ctx, 201, { Location: `/v2/${name.path}/manifests/${digest}`, 'Docker-Content-Digest': digest })
}

/**
 * Every blob the document names, children of an index followed down to their layers, each
 * a complete object of the size its descriptor says. All missing ones are reported at once
 * (distribution-spec: one MANIFEST_BLOB_UNKNOWN per blob, the digest in `detail`).
 */
async function imageBlobs (store: Store, document: ManifestDocument, depth: number): Promise<ImageBlob[]> {
  const found: ImageBlob[] = []
  const missing: string[] = []
  for (const reference of document.references) {
    const blob = await heldBlob(store, reference)
    if (blob === undefined) {
      missing.push(reference.digest.digest)
      continue
    }
    found.push(blob)
    if (document.kind === 'index' && isDocument(reference)) found.push(...await childBlobs(store, reference, blob, depth))
  }
  if (missing.length > 0) {
    throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `the manifest names ${missing.length} blob(s) not pushed here: ${missing.join(', ')}; push them first`, { detail: { digest: missing[0], missing } })
  }
  return found
}

async function heldBlob (store: Store, reference: Reference): Promise<ImageBlob | undefined> {
  const object = await store.objectBySha256(reference.digest.hex)
  if (object === undefined) return undefined
  let size: number
  try {
    const file = await open(store.objectPath(object), 'r')
    try {
      size = (await file.stat()).size
    } finally {
      await file.close()
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  if (size !== reference.size) {
    throw new RegistryError('MANIFEST_INVALID', `${reference.digest.digest} is ${size} bytes here, the manifest says ${reference.size}`, { detail: { digest: reference.digest.digest, size, declared: reference.size } })
  }
  return { sha256: reference.digest.hex, object, size }
}

/** A child manifest of an index: its bytes are checked against its digest, then its own blobs collected. */
async function childBlobs (store: Store, reference: Reference, blob: ImageBlob, depth: number): Promise<ImageBlob[]> {
  if (depth >= MAX_INDEX_DEPTH) throw new RegistryError('MANIFEST_INVALID', `image indexes nest deeper than ${MAX_INDEX_DEPTH} levels`)
  if (blob.size > MAX_MANIFEST_BYTES) throw new RegistryError('MANIFEST_INVALID', `child manifest ${reference.digest.digest} is over ${MAX_MANIFEST_BYTES} bytes`)
  const file = await open(store.objectPath(blob.object), 'r')
  let bytes: Buffer
  try {
    bytes = await file.readFile()
  } finally {
    await file.close()
  }
  if (sha256Hex(bytes) !== blob.sha256) throw new RegistryError('MANIFEST_INVALID', `child manifest ${reference.digest.digest} is damaged in this store; push it again`)
  let child: ManifestDocument
  try {
    child = parseManifestDocument(bytes, reference.mediaType)
  } catch (err) {
    throw new RegistryError('MANIFEST_INVALID', `child manifest ${reference.digest.digest}: ${(err as Error).message}`, { cause: err })
  }
  return await imageBlobs(store, child, depth + 1)
}

function isDocument (reference: Reference): boolean {
  return isIndexMediaType(reference.mediaType) || isManifestMediaType(reference.mediaType)
}
