import {
  imageRefOf, MAX_MANIFEST_BYTES, parseDigest, parseRepositoryName, RegistryError,
  type IncomingBlob, type RepositoryName, type Sha256Digest,
} from '../http/index.js'
import { servedMediaType } from '../oci/index.js'
import { commitBlobBundle, type Store } from '../store/index.js'
import type { FleetAnswer, FleetBlobAnswer, FleetBlobQuery, FleetQuery } from '../swarm/index.js'
import type { Logger } from './logger.js'
import type { PullThrough } from './pull-through.js'

export interface FleetAnswerComponents {
  store: Store
  /** This node's own upstream: present only on nodes configured with one. */
  pullThrough?: PullThrough
  /**
   * Why this node's upstream is withheld from this asker (an open fleet), told to the asker in
   * place of "no upstream": a gateway deployed without the optional swarm key plainly had one.
   */
  pullThroughWithheld?: string
  /** A blob this node is receiving from the fleet right now, read as it arrives (undefined when none is). */
  incoming?: (digest: Sha256Digest, signal: AbortSignal) => Promise<IncomingBlob | undefined>
  /**
   * Whether this asker may make this node write (and so announce) a one-blob bundle for an
   * object no bundle names: only a peer the operator let act here (content-sources.ts).
   */
  mayBundle?: boolean
  logger: Logger
}

const NO_UPSTREAM = 'this node has no upstream for its registry'

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/

/**
 * What this node answers a trusted-peer question of the fleet (/shoal/fleet/1.0.0):
 * - a tag: the manifest a ref here names, or (with an upstream for that registry, when the
 *   asker allows pull-through) what the upstream says, fetched once and stored here;
 * - a digest: the smallest bundle here that holds it whole, fetching it from the upstream
 *   first when allowed; an object no bundle names yet (a blob pulled through before its image
 *   is whole, a child manifest) is made a bundle of its own so the swarm can move it, but only
 *   for an asker that may make this node write (`mayBundle`): a stranger is answered from the
 *   bundles that exist, as a bundle written is also announced (have-lists, DHT).
 * A peer can make this node fetch only from the upstream its operator configured, and only
 * names of that upstream's registry (the same rule as a containerd request to the mirror).
 */
export async function answerFleet (components: FleetAnswerComponents, query: FleetQuery, from: string, signal: AbortSignal): Promise<FleetAnswer> {
  const { store, logger } = components
  const name = nameOf(query)
  if (typeof name === 'string') return { status: 'not-found', reason: name }
  const upstream = query.pullThrough && components.pullThrough?.covers(name) === true ? components.pullThrough : undefined
  const noUpstream = components.pullThroughWithheld ?? NO_UPSTREAM
  try {
    if (query.kind === 'resolve-tag') {
      if (!TAG.test(query.reference)) return { status: 'not-found', reason: 'not a tag' }
      const target = await store.getRef(imageRefOf(name, query.reference))
      let digest: Sha256Digest | undefined = target?.manifestDigest === undefined ? undefined : parseDigest(target.manifestDigest)
      if (upstream !== undefined) {
        digest = digest === undefined ? await upstream.manifestByTag(name, query.reference, signal) : await upstream.revalidateTag(name, query.reference, digest, signal)
        logger.info('resolved a tag for the fleet', { ref: imageRefOf(name, query.reference), digest: digest.digest, for: from })
      }
      if (digest === undefined) return { status: 'not-found', reason: `no ref here names this tag, and ${noUpstream}` }
      const bytes = await store.readDocument(digest.hex, MAX_MANIFEST_BYTES)
      if (bytes === undefined) return { status: 'not-found', reason: `the manifest ${digest.digest} is not held whole here` }
      // The bundle our ref names goes with it when it is this manifest's image and described
      // here: the asker starts that one pull at once, as for a tag it knows from our record,
      // rather than fetching blob by blob and making a second bundle of the same image.
      const bundleId = target?.manifestDigest === digest.digest && await store.bundleRecord(target.bundleId) !== undefined ? target.bundleId : undefined
      return { status: 'resolved', digest: digest.digest, mediaType: servedMediaType(bytes) ?? '', manifest: bytes, ...(bundleId === undefined ? {} : { bundleId }) }
    }
    const digest = parseDigest(query.reference)
    let object = await store.wholeObjectBySha256(digest.hex)
    if (object === undefined && upstream !== undefined) {
      if (query.manifest === true) await upstream.manifestByDigest(name, digest, signal)
      else await upstream.blob(name, digest, signal)
      logger.info('pulled through for the fleet', { name: name.path, digest: digest.digest, for: from })
      object = await store.wholeObjectBySha256(digest.hex)
    }
    if (object === undefined) return { status: 'not-found', reason: `not held whole here, and ${noUpstream}` }
    // The smallest bundle naming it: an asker that wants one blob gets little else with it.
    const existing = (await store.smallestBundleNaming(object.hash))?.id
    if (existing === undefined && components.mayBundle !== true) return { status: 'not-found', reason: 'no bundle here names it, and this node makes none for a peer it does not trust' }
    const bundleId = existing ?? (await commitBlobBundle(store, { sha256: digest.hex, object: object.hash, size: object.size }, { signal })).bundleId
    return { status: 'found', bundleId }
  } catch (err) {
    return failedAnswer(err, signal, logger, 'a fleet request failed here', { kind: query.kind, name: name.path, reference: query.reference, for: from })
  }
}

/**
 * A blob streamed to a peer (/shoal/fleet-blob/1.0.0): read from the store when held whole
 * here; else as it arrives here from the fleet (this node is an edge the pull-through node
 * pointed the peer at: it relays what it receives, never fetching for the peer); else, with an
 * upstream for its registry (and only in a keyed fleet, which the daemon decides), as it
 * arrives from there: the peer gets its first bytes while this node still downloads, and every
 * peer asking at once shares the one download.
 */
export async function answerFleetBlob (components: FleetAnswerComponents, query: FleetBlobQuery, from: string, signal: AbortSignal): Promise<FleetBlobAnswer> {
  const { store, logger } = components
  const name = nameOf(query)
  if (typeof name === 'string') return { status: 'not-found', reason: name }
  const digest = parseDigest(query.digest)
  try {
    const held = await store.wholeObjectBySha256(digest.hex)
    if (held !== undefined) return { status: 'stream', bytes: await store.wholeObjectReader(held.hash) }
    const incoming = await components.incoming?.(digest, signal)
    if (incoming !== undefined) {
      logger.info('relaying a blob to a peer as it arrives here', { name: name.path, digest: digest.digest, size: incoming.size, for: from })
      return { status: 'stream', bytes: incoming }
    }
    if (components.pullThrough?.covers(name) !== true) return { status: 'not-found', reason: `not held whole here, and ${components.pullThroughWithheld ?? NO_UPSTREAM}` }
    const bytes = await components.pullThrough.openBlob(name, digest, signal)
    logger.info('streaming a blob to the fleet as it arrives from the upstream', { name: name.path, digest: digest.digest, size: bytes.size, for: from })
    return { status: 'stream', bytes }
  } catch (err) {
    return failedAnswer(err, signal, logger, 'a fleet blob request failed here', { name: name.path, digest: digest.digest, for: from })
  }
}

/**
 * What a peer is told when answering it failed: the upstream's 404 is "not found", anything
 * else "unavailable", and logged here. An aborted answer throws the abort instead.
 */
function failedAnswer (err: unknown, signal: AbortSignal, logger: Logger, msg: string, fields: Record<string, unknown>): { status: 'not-found' | 'unavailable', reason: string } {
  signal.throwIfAborted()
  const reason = err instanceof Error ? err.message : String(err)
  if (err instanceof RegistryError && err.status === 404) return { status: 'not-found', reason }
  logger.warn(msg, { ...fields, err })
  return { status: 'unavailable', reason }
}

/** The name a peer asked about, or why it is none. */
function nameOf (query: { registry: string, repository: string }): RepositoryName | string {
  try {
    return parseRepositoryName(query.repository, query.registry, query.registry)
  } catch (err) {
    return `not a repository name: ${(err as Error).message}`
  }
}
