import { sha256Hex } from '../hash/index.js'
import { MAX_MANIFEST_BYTES } from './constants.js'
import { RegistryError } from './errors.js'
import { servedMediaType } from '../oci/index.js'
import { imageRefOf, parseDigest, parseReference, type RepositoryName, type Sha256Digest } from './names.js'
import { ArrivingObject } from './arriving-object.js'
import { bundleHolding, useForReading } from './object-lookup.js'
import { requestedName, type Registry } from './registry.js'
import { namespaceHeader, sendBytes, type RequestContext } from './respond.js'
import type { FailedSource, ResolvedTag } from './sources.js'

/**
 * `GET|HEAD /v2/<name>/manifests/<tag|digest>`. A tag resolves only through the store's refs
 * and the content sources (signed records, trusted peers, the upstream; DESIGN.md: the
 * tag → digest step is what containerd trusts a mirror with). The bytes are
 * checked against their digest before they are served, and sent with the headers containerd
 * needs: Content-Type (the document's own media type), Content-Length, Docker-Content-Digest.
 */
export async function getManifest (ctx: RequestContext, registry: Registry, rawName: string, rawReference: string): Promise<void> {
  const name = requestedName(ctx, registry, rawName)
  const reference = parseReference(rawReference)
  let digest: Sha256Digest
  let bundleId: string | undefined
  let handedOver: Buffer | undefined
  if (reference.kind === 'tag') {
    const target = await registry.store.getRef(imageRefOf(name, reference.tag))
    const held: ResolvedTag | undefined = target?.manifestDigest === undefined ? undefined : { digest: parseDigest(target.manifestDigest), bundleId: target.bundleId, publisher: target.publisher, local: target.local }
    // The sources decide whether a held tag still stands (an upstream may have moved it) and
    // resolve one not held here; a tag never comes from anyone else (DESIGN.md).
    const resolved = registry.sources === undefined ? held : await registry.sources.resolveTag(name, reference.tag, held, { signal: ctx.signal })
    if (resolved === undefined) {
      registry.logger?.info('manifest not found', { name: name.path, reference: reference.tag, reason: held === undefined ? 'no ref here or in the fleet names this tag' : 'the tag is gone' })
      throw manifestUnknown(name, reference.tag)
    }
    digest = resolved.digest
    bundleId = resolved.bundleId
    // Checked here too: what the sources hand over is served as it is.
    if (resolved.manifest !== undefined && sha256Hex(resolved.manifest) === digest.hex) handedOver = resolved.manifest
  } else {
    digest = reference.digest
    const storing = registry.sources?.manifestBeingStored?.(digest)
    if (storing !== undefined && sha256Hex(storing) === digest.hex) handedOver = storing
  }
  const bytes = handedOver ?? await loadManifest(ctx, registry, name, digest, bundleId)
  const mediaType = servedMediaType(bytes)
  if (mediaType === undefined) throw manifestUnknown(name, digest.digest, 'names a blob that is not a manifest')
  sendBytes(ctx, 200, bytes, { 'Content-Type': mediaType, 'Docker-Content-Digest': digest.digest, ...namespaceHeader(name) })
}

/**
 * The manifest's bytes: from the store, else from the content sources (in their one order: the
 * bundle the tag's ref names, the fleet, the upstream), and when the store knows it but its
 * bundle brings nothing, from the sources after that one.
 */
async function loadManifest (ctx: RequestContext, registry: Registry, name: RepositoryName, digest: Sha256Digest, bundleId: string | undefined): Promise<Buffer> {
  const { store } = registry
  let object = await store.objectBySha256(digest.hex)
  if (object === undefined && registry.sources !== undefined && await registry.sources.locate(name, digest, { signal: ctx.signal, manifest: true, refBundle: bundleId }) === true) {
    object = await store.objectBySha256(digest.hex)
  }
  if (object === undefined) {
    registry.logger?.info('manifest not found', { name: name.path, digest: digest.digest, reason: bundleId === undefined ? 'no bundle here names it' : 'its bundle could not be fetched' })
    throw manifestUnknown(name, digest.digest)
  }
  // The client's next requests are for this image's config and layers: keep it from the quota.
  const release = await useForReading(store, object, name, bundleId)
  let bytes: Buffer | undefined
  try {
    if (!await store.hasObject(object)) {
      const failed = await fetchManifest(ctx, registry, name, digest, object, bundleId)
      if (failed !== undefined) object = await manifestFromNextSource(ctx, registry, name, digest, failed)
    }
    bytes = await store.readSmallObject(object, MAX_MANIFEST_BYTES)
  } finally {
    release()
  }
  if (bytes === undefined) throw manifestUnknown(name, digest.digest, `is not held here or is over ${MAX_MANIFEST_BYTES} bytes`)
  if (sha256Hex(bytes) !== digest.hex) {
    // The store's sha256 index disagrees with the object: serving it would hand containerd a
    // document it will refuse. Log for the operator, answer a miss so the client moves on.
    registry.logger?.error('stored manifest does not match its digest', { digest: digest.digest, object })
    throw manifestUnknown(name, digest.digest, 'is damaged in this store')
  }
  return bytes
}

/**
 * Waits for a manifest the store knows of (a bundle here names it) to arrive through the blob
 * source; says why when it did not. No deadline cuts a transfer that is making progress: only a
 * failing source or `firstChunkTimeoutMs` of silence (no chunk of the bundle), as for a blob's
 * first chunk: nothing of the response has gone until the whole manifest is here.
 */
async function fetchManifest (ctx: RequestContext, registry: Registry, name: RepositoryName, digest: Sha256Digest, object: string, bundleId: string | undefined): Promise<FailedSource | undefined> {
  const source = registry.blobSource
  const holder = bundleId ?? (await bundleHolding(registry.store, object, name))?.bundleId
  if (source === undefined || holder === undefined) return { source: 'fleet-bundle', reason: 'known here, but no bundle to fetch it with' }
  const arriving = new ArrivingObject({ store: registry.store, source, bundleId: holder, object, signal: ctx.signal })
  try {
    await arriving.waitForComplete(registry.firstChunkTimeoutMs, ctx.signal)
    return undefined
  } catch (err) {
    ctx.signal.throwIfAborted()
    return { source: 'fleet-bundle', reason: `the pull of bundle ${holder} did not bring it: ${reasonOf(err)}` }
  } finally {
    arriving.close()
  }
}

/**
 * The manifest's object, whole, from the sources after one that failed (this node's upstream;
 * a manifest is not streamed by the fleet's pull-through), or a 404 saying why.
 */
async function manifestFromNextSource (ctx: RequestContext, registry: Registry, name: RepositoryName, digest: Sha256Digest, failed: FailedSource): Promise<string> {
  const next = registry.sources === undefined ? false : await registry.sources.locate(name, digest, { signal: ctx.signal, manifest: true, failed })
  const object = next === true ? await registry.store.objectBySha256(digest.hex) : undefined
  if (object === undefined || !await registry.store.hasObject(object)) {
    // Info, with the reason: a 404 sends containerd to its next host (issue 8).
    registry.logger?.info('manifest not found: it could not be fetched from the fleet, and no later source has it', { name: name.path, digest: digest.digest, failed: failed.source, reason: failed.reason })
    throw manifestUnknown(name, digest.digest, 'could not be fetched from the fleet')
  }
  return object
}

function reasonOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function manifestUnknown (name: RepositoryName, reference: string, why = 'is not known here'): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} of ${name.host}/${name.repository} ${why}`, {
    detail: { name: name.path, reference },
    headers: namespaceHeader(name),
  })
}
