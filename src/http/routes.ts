import { getBlob } from './blobs.js'
import { RegistryError } from './errors.js'
import { putManifest } from './manifest-push.js'
import { getManifest } from './manifests.js'
import type { Registry } from './registry.js'
import { sendJson, type RequestContext } from './respond.js'
import { listCatalog, listTags } from './tags.js'
import { cancelUpload, patchUpload, putUpload, startUpload, uploadStatus } from './uploads.js'

export type Route =
  | { kind: 'health' }
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags', name: string }
  | { kind: 'manifest', name: string, reference: string }
  | { kind: 'blob', name: string, digest: string }
  | { kind: 'uploads', name: string }
  | { kind: 'upload', name: string, session: string }

// distribution-spec "Endpoints" (end-1 … end-13). Names may hold slashes, so each pattern is
// anchored on what follows the name; the upload patterns come before the blob one, which
// would otherwise read "uploads" as a digest.
const PATTERNS: Array<[RegExp, (groups: string[]) => Route]> = [
  [/^\/healthz$/, () => ({ kind: 'health' })],
  [/^\/v2\/?$/, () => ({ kind: 'base' })],
  [/^\/v2\/_catalog$/, () => ({ kind: 'catalog' })],
  [/^\/v2\/(.+)\/tags\/list$/, ([name = '']) => ({ kind: 'tags', name })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, ([name = '', reference = '']) => ({ kind: 'manifest', name, reference })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, ([name = '']) => ({ kind: 'uploads', name })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, ([name = '', session = '']) => ({ kind: 'upload', name, session })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, ([name = '', digest = '']) => ({ kind: 'blob', name, digest })],
]

/** The route a path names, or undefined for anything that is not the API. */
export function matchRoute (pathname: string): Route | undefined {
  for (const [pattern, build] of PATTERNS) {
    const match = pattern.exec(pathname)
    if (match === null) continue
    const groups = match.slice(1).map(decodeComponent)
    if (groups.some(g => g === undefined)) return undefined
    return build(groups as string[])
  }
  return undefined
}

export async function dispatch (ctx: RequestContext, registry: Registry, route: Route): Promise<void> {
  const method = ctx.req.method ?? 'GET'
  const read = method === 'GET' || method === 'HEAD'
  switch (route.kind) {
    case 'health':
      if (!read) throw notAllowed('GET, HEAD')
      ctx.res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 2 })
      ctx.res.end(ctx.head ? undefined : 'ok')
      return
    case 'base':
      // distribution-spec end-1: 200 means "this is a registry, and you may use it".
      if (!read) throw notAllowed('GET, HEAD')
      sendJson(ctx, 200, {})
      return
    case 'catalog':
      if (!read) throw notAllowed('GET, HEAD')
      await listCatalog(ctx, registry)
      return
    case 'tags':
      if (!read) throw notAllowed('GET, HEAD')
      await listTags(ctx, registry, route.name)
      return
    case 'manifest':
      if (read) await getManifest(ctx, registry, route.name, route.reference)
      else if (method === 'PUT') await putManifest(ctx, registry, route.name, route.reference)
      else throw notAllowed('GET, HEAD, PUT')
      return
    case 'blob':
      if (!read) throw notAllowed('GET, HEAD')
      await getBlob(ctx, registry, route.name, route.digest)
      return
    case 'uploads':
      if (method !== 'POST') throw notAllowed('POST')
      await startUpload(ctx, registry, route.name)
      return
    case 'upload':
      if (method === 'GET') uploadStatus(ctx, registry, route.name, route.session)
      else if (method === 'PATCH') await patchUpload(ctx, registry, route.name, route.session)
      else if (method === 'PUT') await putUpload(ctx, registry, route.name, route.session)
      else if (method === 'DELETE') await cancelUpload(ctx, registry, route.name, route.session)
      else throw notAllowed('GET, PATCH, PUT, DELETE')
  }
}

function notAllowed (allow: string): RegistryError {
  return new RegistryError('UNSUPPORTED', `this method is not supported here; allowed: ${allow}`, { headers: { Allow: allow } })
}

function decodeComponent (value: string): string | undefined {
  try {
    return decodeURIComponent(value)
  } catch {
    return undefined
  }
}
