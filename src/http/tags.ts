import { MAX_PAGE_ENTRIES } from './constants.js'
import { RegistryError } from './errors.js'
import { tagPrefixOf } from './names.js'
import { requestedName, type Registry } from './registry.js'
import { namespaceHeader, sendJson, type Headers, type RequestContext } from './respond.js'

/** `GET /v2/<name>/tags/list[?n=&last=]`: the repository's tags from the store's refs, in lexical order. */
export async function listTags (ctx: RequestContext, registry: Registry, rawName: string): Promise<void> {
  const name = requestedName(ctx, registry, rawName)
  const prefix = tagPrefixOf(name)
  const tags = (await registry.store.refNames()).filter(ref => ref.startsWith(prefix)).map(ref => ref.slice(prefix.length))
  if (tags.length === 0) {
    throw new RegistryError('NAME_UNKNOWN', `no tags of ${name.host}/${name.repository} here`, { detail: { name: name.path }, headers: namespaceHeader(name) })
  }
  const page = paginate(ctx, tags, `/v2/${name.path}/tags/list`)
  sendJson(ctx, 200, { name: name.path, tags: page.entries }, { ...page.headers, ...namespaceHeader(name) })
}

/** `GET /v2/_catalog[?n=&last=]`: every repository with a tag, as full names (host included). */
export async function listCatalog (ctx: RequestContext, registry: Registry): Promise<void> {
  const repositories = new Set((await registry.store.refNames()).map(ref => ref.slice(0, ref.lastIndexOf(':'))))
  const page = paginate(ctx, [...repositories], '/v2/_catalog')
  sendJson(ctx, 200, { repositories: page.entries }, page.headers)
}

/**
 * distribution-spec "Listing Tags": sorted lexically, `n` entries at most, those after
 * `last`; when more remain, a `Link: <…?n=&last=>; rel="next"` header says where.
 * We cap `n` at MAX_PAGE_ENTRIES, which the spec allows (the Link header covers it).
 */
function paginate (ctx: RequestContext, all: string[], path: string): { entries: string[], headers: Headers } {
  const sorted = [...all].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
  const last = ctx.url.searchParams.get('last')
  const rawN = ctx.url.searchParams.get('n')
  const after = last === null ? sorted : sorted.filter(entry => entry > last)
  if (rawN === null) return { entries: after.slice(0, MAX_PAGE_ENTRIES), headers: linkIfMore(ctx, after, MAX_PAGE_ENTRIES, path) }
  if (!/^\d{1,9}$/.test(rawN)) throw new RegistryError('PAGINATION_NUMBER_INVALID', `n=${JSON.stringify(rawN.slice(0, 20))} is not a whole number`, { detail: { n: rawN.slice(0, 20) } })
  const n = Math.min(Number(rawN), MAX_PAGE_ENTRIES)
  return { entries: after.slice(0, n), headers: linkIfMore(ctx, after, n, path) }
}

function linkIfMore (ctx: RequestContext, after: string[], n: number, path: string): Headers {
  const lastShown = after[n - 1]
  if (after.length <= n || lastShown === undefined) return {}
  const query = new URLSearchParams({ n: String(n), last: lastShown })
  const ns = ctx.url.searchParams.get('ns')
  if (ns !== null) query.set('ns', ns)
  return { Link: `<${path}?${query.toString()}>; rel="next"` }
}
