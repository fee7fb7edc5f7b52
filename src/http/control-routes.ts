import { collectGarbage, verifyStore, type Store } from '../store/index.js'
import { streamPull } from './control-pull.js'
import { ControlError, mediaType, optionalString, pathRefused, readJson, stringField, type ControlRequest } from './control-request.js'
import { receivePush, sendBundle, type PushKind } from './control-transfer.js'
import type { ControlApiComponents, ControlApiInit, PreheatControl, StatusResponse } from './control-types.js'
import { FLEET_PAGE_ROWS, summarizeFleet } from './fleet-view.js'

/** What a route may use: the daemon's parts and options, as createControlApi was given them. */
export interface ControlContext {
  components: ControlApiComponents
  init: ControlApiInit
}

/**
 * One endpoint under `/api/v1`: `json` answers 200 with what it returns; `stream` writes its
 * own answer (NDJSON progress, a tar). A `prefix` route owns every path that starts with
 * `path` and reads the rest as an ID or ref (ControlRequest.rest).
 */
export type ControlRoute = { method: 'GET' | 'POST', path: string, prefix?: true } & (
  | { json: (request: ControlRequest, context: ControlContext) => Promise<unknown> }
  | { stream: (request: ControlRequest, context: ControlContext) => Promise<void> }
)

/** The control API, as docs/architecture.md lists it; the CLI is its client. */
export const CONTROL_ROUTES: readonly ControlRoute[] = [
  { method: 'GET', path: '/status', json: async (_, { components, init }) => await readStatus(components, init) },
  { method: 'GET', path: '/bundles', json: async (_, { components }) => await components.store.listBundles() },
  { method: 'GET', path: '/bundles/', prefix: true, json: async ({ rest }, { components }) => await bundleDetail(components.store, rest) },
  { method: 'GET', path: '/revisions', json: async ({ url }, { components }) => await components.store.revisions(url.searchParams.get('ref') ?? undefined) },
  {
    method: 'GET',
    path: '/fleet',
    json: async (_, { components: { swarm, store, preheats } }) => summarizeFleet(swarm.fleetView(), await store.listBundles(), { preheats: preheats?.status() }),
  },
  { method: 'GET', path: '/peers', json: async (_, { components }) => components.swarm.peers() },
  { method: 'POST', path: '/push', json: push },
  {
    method: 'POST',
    path: '/pull',
    stream: async ({ req, res, signal }, { components }) => {
      const body = await readJson(req, signal)
      if (body.dest !== undefined) throw pathRefused('pull', 'pull, then GET /api/v1/export/ID and write the stream yourself (shoal pull REF DIR does)')
      await streamPull(components, stringField(body, 'ref'), res, signal)
    },
  },
  {
    method: 'GET',
    path: '/export/',
    prefix: true,
    stream: async ({ url, res, rest, signal }, { components: { store } }) => {
      const format = url.searchParams.get('format') ?? 'tree'
      if (format !== 'tree' && format !== 'archive') throw new ControlError('BODY_INVALID', `format must be tree or archive, not ${JSON.stringify(format)}`)
      await sendBundle(store, res, await store.resolve(rest), format, signal)
    },
  },
  {
    method: 'POST',
    path: '/verify',
    json: async ({ req, signal }, { components: { store } }) => {
      const body = await readJson(req, signal)
      const bundleId = typeof body.ref === 'string' ? await store.resolve(body.ref) : undefined
      return await verifyStore(store, { bundleId, signal })
    },
  },
  { method: 'POST', path: '/rm', json: remove },
  { method: 'POST', path: '/preheat', json: preheat },
  { method: 'GET', path: '/preheats', json: async (_, { components }) => requirePreheats(components).status() },
  {
    method: 'POST',
    path: '/unpin',
    json: async ({ req, signal }, { components }) => await requirePreheats(components).unpin(stringField(await readJson(req, signal), 'ref')),
  },
  { method: 'POST', path: '/gc', json: async ({ signal }, { components }) => await collectGarbage(components.store, { signal }) },
]

/** What `GET /api/v1/status` and the status page's `/status.json` answer. */
export async function readStatus (components: ControlApiComponents, init: ControlApiInit = {}): Promise<StatusResponse> {
  const { store, swarm } = components
  const bundles = await store.listBundles()
  return {
    peerId: swarm.peerId, addresses: swarm.addresses(), gateway: init.gateway === true, labels: { ...init.labels },
    bundles, peers: swarm.peers(), stats: swarm.stats(), fleet: summarizeFleet(swarm.fleetView(), bundles, { maxNodes: FLEET_PAGE_ROWS, preheats: components.preheats?.status() }),
    serving: { ...init.serving },
  }
}

async function bundleDetail (store: Store, idOrRef: string): Promise<unknown> {
  const id = await store.resolve(idOrRef)
  const loaded = await store.requireBundle(id)
  const objects = []
  for (const [hash, size] of loaded.objectSizes) {
    const state = await store.objectState(hash)
    const chunks = state.state === 'partial' ? { have: state.bitmap.count(), of: state.bitmap.chunkCount } : undefined
    objects.push({ hash, size, state: state.state, chunks })
  }
  const progress = await store.bundleProgress(loaded)
  return { id, ...progress, objects }
}

/** `POST /push`: the tree or archive itself as a tar body (paths never cross this API). */
async function push ({ req, url, signal }: ControlRequest, { components: { store, swarm, logger }, init }: ControlContext): Promise<unknown> {
  if (mediaType(req) !== 'application/x-tar') throw pathRefused('push', 'send the tree or archive itself as application/x-tar (the shoal CLI does)')
  const kind = url.searchParams.get('kind') ?? 'tree'
  if (kind !== 'tree' && kind !== 'archive') throw new ControlError('BODY_INVALID', `kind must be tree or archive, not ${JSON.stringify(kind)}`)
  const result = await receivePush(store, req, kind as PushKind, { refs: url.searchParams.getAll('ref'), signal, maxBytes: init.maxPushBytes })
  // `--ref` here moves a fleet-wide tag (the store's ref events log each move too).
  logger?.info('bundle pushed', {
    bundleId: result.bundleId, snapdirId: result.snapdirId, kind, refs: result.refs.map(r => r.ref), newObjects: result.newObjects, newBytes: result.newBytes,
  })
  await swarm.announce(result.bundleId)
  return { id: result.bundleId, snapdirId: result.snapdirId, refs: result.refs, newObjects: result.newObjects, newBytes: result.newBytes }
}

/** `POST /rm`: forgets the bundles named, then collects what nothing references any more. */
async function remove ({ req, signal }: ControlRequest, { components: { store } }: ControlContext): Promise<unknown> {
  const body = await readJson(req, signal)
  const refs = Array.isArray(body.refs) ? body.refs.map(String) : []
  const ids = [...new Set(await Promise.all(refs.map(async r => await store.resolve(r))))]
  for (const id of ids) await store.removeBundleRecord(id)
  return { removed: ids, ...await collectGarbage(store, { signal }) }
}

/** `POST /preheat`: a signed record that moves (or, cancelled, releases) a bundle onto every matching node. */
async function preheat ({ req, signal }: ControlRequest, { components }: ControlContext): Promise<unknown> {
  const body = await readJson(req, signal)
  const nodes = optionalString(body, 'nodes')
  const platform = optionalString(body, 'platform')
  if (body.cancel !== undefined && typeof body.cancel !== 'boolean') throw new ControlError('BODY_INVALID', 'the field "cancel" must be true or false')
  const issued = await requirePreheats(components).issue({
    ref: stringField(body, 'ref'), ...(nodes !== undefined ? { nodes } : {}), ...(platform !== undefined ? { platform } : {}), cancel: body.cancel === true,
  })
  // A preheat moves bytes onto every matching node of the fleet: always worth a line.
  components.logger?.info(issued.cancelled ? 'preheat cancelled' : 'preheat issued', { ...issued })
  return issued
}

function requirePreheats (components: ControlApiComponents): PreheatControl {
  if (components.preheats === undefined) throw new ControlError('NOT_FOUND', 'this node keeps no preheats')
  return components.preheats
}
