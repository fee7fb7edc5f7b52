import { RegistryError } from './errors.js'
import { parseDigest, type RepositoryName, type Sha256Digest } from './names.js'
import { requestedName, requirePush, type Registry } from './registry.js'
import { sendEmpty, type Headers, type RequestContext } from './respond.js'
import type { UploadSession } from './upload-sessions.js'

// The push side of distribution-spec "Pushing blobs": POST starts (or mounts, or uploads
// monolithically), PATCH appends, PUT completes, GET reports, DELETE cancels.

/** `POST /v2/<name>/blobs/uploads/` */
export async function startUpload (ctx: RequestContext, registry: Registry, rawName: string): Promise<void> {
  requirePush(registry)
  const name = requestedName(ctx, registry, rawName)
  const mount = ctx.url.searchParams.get('mount')
  if (mount !== null && await mountBlob(ctx, registry, name, mount)) return
  const rawDigest = ctx.url.searchParams.get('digest')
  // Checked before a session exists, so a bad digest leaves nothing behind.
  const digest = rawDigest === null ? undefined : parseDigest(rawDigest)
  const session = await registry.uploads.start(repositoryKey(name))
  if (digest === undefined) {
    // A POST body without a digest carries nothing we could verify; it is not kept.
    ctx.req.resume()
    sendEmpty(ctx, 202, sessionHeaders(name, session))
    return
  }
  // Monolithic upload: the whole blob in the POST body, checked against ?digest=.
  await completeUpload(ctx, registry, name, session, digest)
}

/** `PATCH /v2/<name>/blobs/uploads/<session>` */
export async function patchUpload (ctx: RequestContext, registry: Registry, rawName: string, id: string): Promise<void> {
  const { name, session } = pushSession(ctx, registry, rawName, id)
  checkContentRange(ctx, name, session)
  await registry.uploads.append(session, ctx.req, ctx.signal)
  sendEmpty(ctx, 202, sessionHeaders(name, session))
}

/** `PUT /v2/<name>/blobs/uploads/<session>?digest=` — with the last chunk as its body, or none. */
export async function putUpload (ctx: RequestContext, registry: Registry, rawName: string, id: string): Promise<void> {
  const { name, session } = pushSession(ctx, registry, rawName, id)
  const digest = ctx.url.searchParams.get('digest')
  if (digest === null) throw new RegistryError('DIGEST_INVALID', 'completing an upload needs ?digest=sha256:<hex> (distribution-spec "Pushing blobs")')
  const parsed = parseDigest(digest)
  checkContentRange(ctx, name, session)
  await completeUpload(ctx, registry, name, session, parsed)
}

/** `GET /v2/<name>/blobs/uploads/<session>`: how far it got, so a client can resume. */
export function uploadStatus (ctx: RequestContext, registry: Registry, rawName: string, id: string): void {
  const { name, session } = pushSession(ctx, registry, rawName, id)
  sendEmpty(ctx, 204, sessionHeaders(name, session))
}

/** `DELETE /v2/<name>/blobs/uploads/<session>` */
export async function cancelUpload (ctx: RequestContext, registry: Registry, rawName: string, id: string): Promise<void> {
  await registry.uploads.cancel(pushSession(ctx, registry, rawName, id).session)
  sendEmpty(ctx, 204)
}

async function completeUpload (ctx: RequestContext, registry: Registry, name: RepositoryName, session: UploadSession, digest: Sha256Digest): Promise<void> {
  await registry.uploads.append(session, ctx.req, ctx.signal)
  const blob = await registry.uploads.finish(session, digest, ctx.signal)
  registry.logger?.debug('blob pushed', { digest: digest.digest, object: blob.object, size: blob.size, created: blob.created })
  sendEmpty(ctx, 201, blobHeaders(name, digest))
}

/**
 * Cross-repository mount (`?mount=<digest>&from=<repo>`): objects are shared by the whole
 * store, so any blob held is mountable. The spec says a mount that cannot be done falls
 * back to a plain upload (202), so a bad or unknown digest is not an error here.
 */
async function mountBlob (ctx: RequestContext, registry: Registry, name: RepositoryName, mount: string): Promise<boolean> {
  let digest: Sha256Digest
  try {
    digest = parseDigest(mount)
  } catch {
    return false
  }
  const object = await registry.store.objectBySha256(digest.hex)
  if (object === undefined || !await registry.store.hasObject(object)) return false
  ctx.req.resume()
  sendEmpty(ctx, 201, blobHeaders(name, digest))
  return true
}

// distribution-spec "Pushing a blob in chunks": `Content-Range: <start>-<end>`; Docker's
// client writes a `bytes ` prefix, which is accepted too.
const CONTENT_RANGE = /^(?:bytes[ =])?(\d{1,16})-(\d{1,16})$/

/** A chunk must start where the last one ended; otherwise 416 with where we are (spec: "out of order"). */
function checkContentRange (ctx: RequestContext, name: RepositoryName, session: UploadSession): void {
  const header = ctx.req.headers['content-range']
  if (header === undefined) return
  const match = CONTENT_RANGE.exec(header.trim())
  const start = Number(match?.[1])
  const end = Number(match?.[2])
  const length = ctx.req.headers['content-length']
  const lengthAgrees = length === undefined || Number(length) === end - start + 1
  if (match === null || start !== session.offset || end < start || !lengthAgrees) {
    throw new RegistryError('RANGE_INVALID', `Content-Range ${JSON.stringify(header.slice(0, 64))} does not continue the upload, which has ${session.offset} bytes`, {
      detail: { range: header.slice(0, 64), offset: session.offset },
      headers: sessionHeaders(name, session),
    })
  }
}

function sessionHeaders (name: RepositoryName, session: UploadSession): Headers {
  return {
    Location: `/v2/${name.path}/blobs/uploads/${session.id}`,
    Range: session.range,
    'Docker-Upload-UUID': session.id,
    'Blob-Upload-Session-ID': session.id,
  }
}

/** Where a blob pushed (or mounted) can be read. */
function blobHeaders (name: RepositoryName, digest: Sha256Digest): Headers {
  return { Location: `/v2/${name.path}/blobs/${digest.digest}`, 'Docker-Content-Digest': digest.digest }
}

/** The session a request's path names, only for a request that may push and for the repository it was opened for. */
function pushSession (ctx: RequestContext, registry: Registry, rawName: string, id: string): { name: RepositoryName, session: UploadSession } {
  requirePush(registry)
  const name = requestedName(ctx, registry, rawName)
  return { name, session: registry.uploads.get(id, repositoryKey(name)) }
}

/** Sessions belong to the repository they were opened for, host included. */
function repositoryKey (name: RepositoryName): string {
  return `${name.host}/${name.repository}`
}
