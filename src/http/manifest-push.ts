import { sha256Hex } from '../hash/index.js'
import { ingestBlobBytes } from '../store/index.js'
import { MAX_MANIFEST_BYTES } from './constants.js'
import { RegistryError } from './errors.js'
import { commitImage, imageBlobs } from './image-commit.js'
import { parseManifestDocument } from './manifest-document.js'
import { imageRefOf, parseReference } from './names.js'
import { requestedName, requirePush, type Registry } from './registry.js'
import { readBody } from './request-body.js'
import { sendEmpty, type RequestContext } from './respond.js'

/**
 * `PUT /v2/<name>/manifests/<tag|digest>`. The manifest is checked (size, JSON, media type,
 * every blob and child manifest it names held here with the size it says), stored as an
 * object, and, for a tag, made into a bundle that is an OCI image layout of the image with
 * the ref pointing at it. A digest push stores the manifest only, for an index pushed next
 * to name (that is how skopeo pushes a multi-platform image).
 */
export async function putManifest (ctx: RequestContext, registry: Registry, rawName: string, rawReference: string): Promise<void> {
  requirePush(registry)
  const name = requestedName(ctx, registry, rawName)
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
  const blobs = await imageBlobs(registry.store, document)
  if (reference.kind === 'tag') {
    const result = await commitImage(registry.store, {
      ref: imageRefOf(name, reference.tag), bytes, hex, document, blobs, chunkTables: registry.chunkTables, signal: ctx.signal,
    })
    registry.logger?.info('image pushed', { ref: imageRefOf(name, reference.tag), digest, bundleId: result.bundleId, newBundle: result.created })
  } else {
    await ingestBlobBytes(registry.store, bytes, { sha256: hex, signal: ctx.signal })
  }
  sendEmpty(ctx, 201, { Location: `/v2/${name.path}/manifests/${digest}`, 'Docker-Content-Digest': digest })
}
