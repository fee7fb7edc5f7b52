import type { IncomingMessage, ServerResponse } from 'node:http'
import { CodedError, describeError } from '../errors/index.js'
import {
  collectGarbage, verifyStore, type Store,
} from '../store/index.js'
import { receivePush, sendBundle, type PushKind } from './control-transfer.js'
import { BODY_IDLE_TIMEOUT_MS } from './constants.js'
import { endRefused, readBody } from './request-body.js'
import { requestUrl, writeJsonHead } from './respond.js'
import type { PreheatControl, PullEvent, StatusResponse, SwarmControl } from './control-types.js'
import type { HttpLogger } from './types.js'
import { FLEET_PAGE_ROWS, summarizeFleet } from './fleet-view.js'

/** Control requests are small JSON documents; anything larger is refused unread. */
const MAX_CONTROL_BODY_BYTES = 64 * 1024
/** A progress line at most this often per pull: a terminal needs no more. */
const PULL_PROGRESS_INTERVAL_MS = 250

export interface ControlApiComponents {
  store: Store
  swarm: SwarmControl
  /** Preheats and pins; without it those routes answer NOT_FOUND. */
  preheats?: PreheatControl
  /** Pushes and pulls asked for by the CLI are logged at info: they move the fleet's content. */
  logger?: HttpLogger
}

export interface ControlApiInit {
  gateway?: boolean
  labels?: Readonly<Record<string, string>>
  /** The most a push may send (the store's quota, when one is set). */
  maxPushBytes?: number
}

/** A request the control API refuses itself; its status comes from the catalogue. */
class ControlError extends CodedError {
  override name = 'ControlError'
}

/**
 * The JSON control API under `/api/v1/` (loopback by default): what the CLI uses when a
 * daemon runs. Returns false for paths it does not own, so the caller can try others.
 */
export function createControlApi (components: ControlApiComponents, init: ControlApiInit = {}): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const { store, swarm } = components
  return async (req, res) => {
    const url = requestUrl(req)
    if (!url.pathname.startsWith('/api/v1/')) return false
    const route = `${req.method ?? 'GET'} ${url.pathname.slice('/api/v1'.length)}`
    const controller = new AbortController()
    res.on('close', () => { if (!res.writableFinished) controller.abort(new Error('client went away')) })
    const signal = controller.signal
    try {
      if (route === 'GET /status') {
        sendJson(res, 200, await readStatus(components, init))
      } else if (route === 'GET /bundles') {
        sendJson(res, 200, await store.listBundles())
      } else if (route.startsWith('GET /bundles/')) {
        sendJson(res, 200, await bundleDetail(store, pathRef(route, 'GET /bundles/')))
      } else if (route === 'GET /revisions') {
        sendJson(res, 200, await store.revisions(url.searchParams.get('ref') ?? undefined))
      } else if (route === 'GET /fleet') {
        sendJson(res, 200, summarizeFleet(swarm.fleetView(), await store.listBundles(), { preheats: components.preheats?.status() }))
      } else if (route === 'GET /peers') {
        sendJson(res, 200, swarm.peers())
      } else if (route === 'POST /push') {
        if (mediaType(req) !== 'application/x-tar') throw pathRefused('push', 'send the tree or archive itself as application/x-tar (the shoal CLI does)')
        const kind = url.searchParams.get('kind') ?? 'tree'
        if (kind !== 'tree' && kind !== 'archive') throw new ControlError('BODY_INVALID', `kind must be tree or archive, not ${JSON.stringify(kind)}`)
        const result = await receivePush(store, req, kind as PushKind, { refs: url.searchParams.getAll('ref'), signal, maxBytes: init.maxPushBytes })
        // `--ref` here moves a fleet-wide tag (the store's ref events log each move too).
        components.logger?.info('bundle pushed', {
          bundleId: result.bundleId, snapdirId: result.snapdirId, kind, refs: result.refs.map(r => r.ref), newObjects: result.newObjects, newBytes: result.newBytes,
        })
        await swarm.announce(result.bundleId)
        sendJson(res, 200, { id: result.bundleId, snapdirId: result.snapdirId, refs: result.refs, newObjects: result.newObjects, newBytes: result.newBytes })
      } else if (route === 'POST /pull') {
        const body = await readJson(req, signal)
        if (body.dest !== undefined) throw pathRefused('pull', 'pull, then GET /api/v1/export/ID and write the stream yourself (shoal pull REF DIR does)')
        await pull(components, stringField(body, 'ref'), res, signal)
      } else if (route.startsWith('GET /export/')) {
        const format = url.searchParams.get('format') ?? 'tree'
        if (format !== 'tree' && format !== 'archive') throw new ControlError('BODY_INVALID', `format must be tree or archive, not ${JSON.stringify(format)}`)
        const id = await store.resolve(pathRef(route, 'GET /export/'))
        await sendBundle(store, res, id, format, signal)
      } else if (route === 'POST /verify') {
        const body = await readJson(req, signal)
        const bundleId = typeof body.ref === 'string' ? await store.resolve(body.ref) : undefined
        sendJson(res, 200, await verifyStore(store, { bundleId, signal }))
      } else if (route === 'POST /rm') {
        const body = await readJson(req, signal)
        const refs = Array.isArray(body.refs) ? body.refs.map(String) : []
        const ids = [...new Set(await Promise.all(refs.map(async r => await store.resolve(r))))]
        for (const id of ids) await store.removeBundleRecord(id)
        sendJson(res, 200, { removed: ids, ...await collectGarbage(store, { signal }) })
      } else if (route === 'POST /preheat') {
        const body = await readJson(req, signal)
        const nodes = optionalString(body, 'nodes')
        const platform = optionalString(body, 'platform')
        if (body.cancel !== undefined && typeof body.cancel !== 'boolean') throw new ControlError('BODY_INVALID', 'the field "cancel" must be true or false')
        const issued = await requirePreheats(components).issue({
          ref: stringField(body, 'ref'), ...(nodes !== undefined ? { nodes } : {}), ...(platform !== undefined ? { platform } : {}), cancel: body.cancel === true,
        })
        // A preheat moves bytes onto every matching node of the fleet: always worth a line.
        components.logger?.info(issued.cancelled ? 'preheat cancelled' : 'preheat issued', { ...issued })
        sendJson(res, 200, issued)
      } else if (route === 'GET /preheats') {
        sendJson(res, 200, requirePreheats(components).status())
      } else if (route === 'POST /unpin') {
        const body = await readJson(req, signal)
        sendJson(res, 200, await requirePreheats(components).unpin(stringField(body, 'ref')))
      } else if (route === 'POST /gc') {
        sendJson(res, 200, await collectGarbage(store, { signal }))
      } else {
        throw new ControlError('NOT_FOUND', `no control route ${route}; see docs/architecture.md for the API`)
      }
    } catch (err) {
      sendError(res, err)
    }
    return true
  }
}

/** What `GET /api/v1/status` and the status page's `/status.json` answer. */
export async function readStatus (components: ControlApiComponents, init: ControlApiInit = {}): Promise<StatusResponse> {
  const { store, swarm } = components
  const bundles = await store.listBundles()
  return {
    peerId: swarm.peerId, addresses: swarm.addresses(), gateway: init.gateway === true, labels: { ...init.labels },
    bundles, peers: swarm.peers(), stats: swarm.stats(), fleet: summarizeFleet(swarm.fleetView(), bundles, { maxNodes: FLEET_PAGE_ROWS, preheats: components.preheats?.status() }),
  }
}

/** The bundle ID or ref that ends `route` after `prefix`, percent-decoded; a broken escape is the caller's error. */
function pathRef (route: string, prefix: string): string {
  const encoded = route.slice(prefix.length)
  try {
    return decodeURIComponent(encoded)
  } catch {
    throw new ControlError('REF_INVALID', `${JSON.stringify(encoded)} has a broken percent-escape: encode the ID or ref with encodeURIComponent (the shoal CLI does)`)
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

/** Streams NDJSON progress lines while the swarm fetches, then one `done` or `error` line. */
async function pull ({ store, swarm, logger }: ControlApiComponents, ref: string, res: ServerResponse, signal: AbortSignal): Promise<void> {
  const id = /^[0-9a-f]{64}$/.test(ref) ? ref : await store.resolve(ref)
  logger?.info('pull asked for', { ref, bundleId: id })
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' })
  const write = (event: PullEvent): void => { res.write(JSON.stringify(event) + '\n') }
  write({ type: 'resolved', id })
  const started = Date.now()
  let lastProgressAt = 0
  // In use while it arrives: the quota keeper evicts others, never the bundle being pulled.
  const release = store.useBundle(id)
  try {
    await swarm.pull(id, {
      signal,
      // A person waits at `shoal pull`: an ID no neighbour and no provider record knows is
      // answered after one search, and what is being asked is shown meanwhile.
      searchOnce: true,
      onSearch: search => { write({ type: 'searching', ...search }) },
      onProgress: progress => {
        const now = Date.now()
        if (now - lastProgressAt < PULL_PROGRESS_INTERVAL_MS) return
        lastProgressAt = now
        write({ type: 'progress', presentBytes: progress.presentBytes, totalBytes: progress.totalBytes, peers: progress.peers })
      },
    })
    await store.touch(id)
    write({ type: 'done', id, seconds: (Date.now() - started) / 1000 })
    logger?.info('pull done', { bundleId: id, seconds: (Date.now() - started) / 1000 })
  } catch (err) {
    const { code, message } = describeError(err)
    // An error without a code is the pull's own failure, not an internal fault of the API.
    write({ type: 'error', code: (err as { code?: unknown }).code === undefined ? 'PULL_FAILED' : code, message })
    logger?.info('pull failed', { bundleId: id, code, message })
  } finally {
    release()
  }
  res.end()
}

/** A request that named a path for the daemon to act on: refused, whatever the path (nothing is opened). */
function pathRefused (route: string, what: string): ControlError {
  return new ControlError('PATH_NOT_ACCEPTED', `the control API takes no paths (${route}): ${what}`)
}

function mediaType (req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
}

async function readJson (req: IncomingMessage, signal: AbortSignal): Promise<Record<string, unknown>> {
  if (mediaType(req) !== 'application/json') throw new ControlError('CONTENT_TYPE_REFUSED', 'this control request takes a JSON body (Content-Type: application/json)')
  // The registry's body reader: a declared length over the limit is refused unread, and a body
  // that stalls is cut after BODY_IDLE_TIMEOUT_MS rather than holding the request.
  const bytes = await readBody(req, {
    maxBytes: MAX_CONTROL_BODY_BYTES,
    idleTimeoutMs: BODY_IDLE_TIMEOUT_MS,
    signal,
    tooLarge: () => new ControlError('BODY_TOO_LARGE', `control requests are at most ${MAX_CONTROL_BODY_BYTES} bytes`),
  })
  if (bytes.length === 0) return {}
  try {
    const value = JSON.parse(bytes.toString()) as unknown
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object')
    return value as Record<string, unknown>
  } catch {
    throw new ControlError('BODY_INVALID', 'the request body must be a JSON object')
  }
}

function requirePreheats (components: ControlApiComponents): PreheatControl {
  if (components.preheats === undefined) throw new ControlError('NOT_FOUND', 'this node keeps no preheats')
  return components.preheats
}

function optionalString (body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw new ControlError('BODY_INVALID', `the field ${JSON.stringify(name)} must be a string`)
  return value
}

function stringField (body: Record<string, unknown>, name: string): string {
  const value = body[name]
  if (typeof value !== 'string' || value === '') throw new ControlError('BODY_INVALID', `the request needs a string field ${JSON.stringify(name)}`)
  return value
}

/** Control answers are the node's state now: never to be reused from a cache. */
const NO_STORE = { 'Cache-Control': 'no-store' }

function sendJson (res: ServerResponse, status: number, value: unknown): void {
  res.end(writeJsonHead(res, status, value, NO_STORE))
}

/** Status and code from the one catalogue (src/errors), as the CLI's exit codes are. */
function sendError (res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    // A stream cut short must not look complete (a tar ending at a block boundary would):
    // destroying the response makes the client see the chunked body end without its terminator.
    res.destroy(err instanceof Error ? err : new Error(String(err)))
    return
  }
  const { code, message, status } = describeError(err)
  endRefused(res.req, res, writeJsonHead(res, status, { error: { code, message } }, NO_STORE))
}
