import {
  imageRefOf, parseDigest, REGISTRY_READ_GRACE_MS, type BlobSource, type ContentSources, type FailedSource, type IncomingBlob,
  type RepositoryName, type ResolvedTag, type Sha256Digest,
} from '../http/index.js'
import { blake3Hex, sha256Hex } from '../hash/index.js'
import { ingestBlobBytes, type Store } from '../store/index.js'
import type { FleetAnswer, FleetBlobResponder, FleetQuery, FleetResponder, FleetResult, Swarm } from '../swarm/index.js'
import { UnwantedBundleError } from './blob-source.js'
import { answerFleet, answerFleetBlob } from './fleet-answers.js'
import { manifestFiling, type ManifestFiling } from './manifest-filing.js'
import { FleetBlobs } from './fleet-blobs.js'
import type { ImageAssembler } from './image-assembler.js'
import { imageObjectOrder } from './layer-order.js'
import type { Logger } from './logger.js'
import { TAG_REVALIDATE_AFTER_MS, TAG_REVALIDATE_TIMEOUT_MS, type PullThrough } from './pull-through.js'
import { RecentMap } from '../recent/index.js'
import { abortAfter, wakeOrTimeout } from '../wait/index.js'

/** How long the layers of a held tag's image wait for its bundle's description to be put in order (past it they come as the swarm picks). */
const LAYER_ORDER_WAIT_MS = 30_000
/** How long a held tag's pull holds its first chunk request for the manifest's hand-over (past it the swarm picks the order). */
const FIRST_OBJECTS_WAIT_MS = 2_000

/** A recorded tag's manifest handed over by the fleet: its bytes (checked against the digest) and their object (their BLAKE3, the name the store gives them). */
interface HandedOver {
  bytes: Buffer
  object: string
}

/**
 * The fleet's hand-over of a recorded tag's manifest: its checked bytes as soon as they come,
 * and with their object: what the answer, the judging of the record's bundle and the order of
 * its first objects need, none of which waits for the store's write of them (46-72 ms at load
 * ~10, traced between the room check and the pull's first chunk request by the edge lane).
 */
interface HandOver {
  bytes: Promise<Buffer | undefined>
  checked: Promise<HandedOver | undefined>
}

/** Held tags whose last check with the fleet is remembered (beyond that the oldest is forgotten and checked again). */
const MAX_RECHECKED_TAGS = 10_000

type ResolvedAnswer = Extract<FleetAnswer, { status: 'resolved' }>

/** Resolves once `promise` settled (either way), `ms` passed, or `signal` aborted: a bounded wait that never throws. */
async function settledWithin (promise: Promise<unknown>, ms: number, signal: AbortSignal): Promise<void> {
  await wakeOrTimeout((wake) => {
    promise.then(wake, wake)
    return () => {}
  }, { timeoutMs: ms, signal })
}

export interface ContentSourcesComponents {
  store: Store
  /** The fleet; without one (a node used alone, a test) only the upstream is asked. */
  swarm?: Swarm
  /** Fetches a bundle's manifest (and then its chunks) from the swarm. */
  blobSource?: Required<BlobSource>
  /** This node's own upstream, when it has one. */
  pullThrough?: PullThrough
  /**
   * Whether other nodes may make this one fetch from its upstream. Only in a fleet closed with
   * a swarm key: in an open one any stranger that reaches the libp2p port could make the
   * gateway pull images its operator never asked for.
   */
  pullThroughForPeers?: boolean
  /** Makes images fetched piece by piece into bundles. */
  assembler: ImageAssembler
  logger: Logger
  /** The daemon's: blobs streaming in from the fleet keep coming when the client that asked leaves (no streaming from the fleet without it). */
  lifetime?: AbortSignal
  /** A held tag with no upstream here is checked with the fleet when last checked this long ago (TAG_REVALIDATE_AFTER_MS unless given). */
  tagRevalidateAfterMs?: number
  /** How long a request waits for that check before it is answered with the tag held (TAG_REVALIDATE_TIMEOUT_MS unless given). */
  tagRevalidateTimeoutMs?: number
}

/**
 * The one place that says where bytes come from when the local store lacks them, in this
 * order (issue 8, "fleet first"):
 *
 * 1. the local store (the registry routes look there before asking us);
 * 2. the fleet: a tag through signed ref records (already in the store, `held`), or by asking
 *    the peers this node trusts what the tag names; a digest by asking those peers which of
 *    their bundles holds it, then the swarm fetches that bundle from every holder;
 * 3. the fleet's pull-through: one trusted peer with an upstream fetches it from there, once
 *    for the whole fleet (the same peer for every edge: gateways first, then by peer ID); a
 *    blob streams here while that peer downloads it (FleetBlobs), a manifest comes whole;
 * 4. this node's own upstream, last (a blob read as it arrives there too).
 *
 * Why trusted peers only: a tag is what containerd trusts a mirror with, so only the keys that
 * may move tags here answer for tags; and a bundle that filed other bytes under
 * `blobs/sha256/<digest>` would make us serve them under that digest, so bundles for a digest
 * are taken from the same keys (the swarm then checks every chunk against that bundle).
 *
 * It also answers other nodes' fleet requests (`respond`), from this node's store and its
 * own upstream.
 */
export function createContentSources (components: ContentSourcesComponents): ContentSources & { respond: FleetResponder, respondBlob: FleetBlobResponder, close: () => Promise<void> } {
  const { store, swarm, blobSource, pullThrough, assembler, logger } = components
  const fleetBlobs = swarm === undefined || components.lifetime === undefined ? undefined : new FleetBlobs({ store, swarm, assembler, logger, lifetime: components.lifetime })
  const own = (name: RepositoryName): PullThrough | undefined => pullThrough?.covers(name) === true ? pullThrough : undefined
  /** Each held tag's last check with the fleet (recheckInFleet), and the move it followed, if any. */
  const fleetRechecks = new RecentMap<string, { at: number, moved?: { from: Sha256Digest, to: Sha256Digest } }>(MAX_RECHECKED_TAGS)

  const askFleet = async (query: FleetQuery, signal: AbortSignal): Promise<FleetResult> => {
    if (swarm === undefined) return { misses: [{ peer: '-', reason: 'this node is not in a fleet' }] }
    try {
      return await swarm.askFleet(query, { signal })
    } catch (err) {
      signal.throwIfAborted()
      return { misses: [{ peer: '-', reason: err instanceof Error ? err.message : String(err) }] }
    }
  }

  /**
   * A held tag checked again with the fleet, for a node with no upstream of its own for the
   * tag's registry, when the fleet set it (a trusted record, or a ref made from a trusted peer's
   * answer): at most once per `tagRevalidateAfterMs` a tag, the trusted node that would
   * pull it through (the gateway) is asked what it names now, and it re-resolves it at its
   * upstream (PullThrough.revalidateTag). Without this an edge served what it first held for
   * as long as it held it, and no node re-resolved a tag that every edge held. A fleet that does
   * not answer within TAG_REVALIDATE_TIMEOUT_MS leaves the tag as it was answered (the gateway or
   * the uplink down: the edge keeps serving what it has): the held ref, or the image a move
   * followed here, until the fleet names another one or the publisher's new record comes.
   */
  const recheckInFleet = async (name: RepositoryName, tag: string, held: ResolvedTag, signal: AbortSignal): Promise<ResolvedTag | undefined> => {
    const ref = imageRefOf(name, tag)
    // A ref this node's operator set (a push here) is not the fleet's to move.
    if (swarm === undefined || (held.publisher === undefined && held.local !== true)) return undefined
    const interval = components.tagRevalidateAfterMs ?? TAG_REVALIDATE_AFTER_MS
    let last = fleetRechecks.get(ref)
    if (last === undefined) {
      // A ref set here within the interval (a record heard, an image assembled) counts as a
      // check: a cold edge that just heard the gateway's record asks nothing more before its
      // first manifest (the neighbour path's manifest time).
      const setAt = (await store.revisions(ref)).at(-1)?.at
      if (setAt !== undefined) {
        last = { at: setAt }
        fleetRechecks.set(ref, last)
      }
    }
    // The move followed here, while the held ref is still the publisher's old record (until its
    // new one comes, once the image is whole at the publisher); any other ref is newer news.
    const following = last?.moved !== undefined && last.moved.from.hex === held.digest.hex ? last.moved : undefined
    const followed = async (): Promise<ResolvedTag | undefined> => following !== undefined && await store.objectBySha256(following.to.hex) !== undefined ? { digest: following.to } : undefined
    if (last !== undefined && Date.now() - last.at < interval) return await followed()
    // The move stays while the check runs and after one the fleet did not answer: dropping it
    // sent this tag back to the old image (the gateway down, or for TAG_REVALIDATE_TIMEOUT_MS)
    // after clients here were given the new one.
    fleetRechecks.set(ref, { at: Date.now(), moved: following })
    const deadline = abortAfter(components.tagRevalidateTimeoutMs ?? TAG_REVALIDATE_TIMEOUT_MS, signal)
    let fleet: FleetResult
    try {
      fleet = await swarm.askFleet({ kind: 'resolve-tag', registry: name.host, repository: name.repository, reference: tag, pullThrough: true }, { signal: deadline, recheck: true })
    } catch (err) {
      signal.throwIfAborted()
      logger.info('could not check a held tag with the fleet; serving the one held, or the image a move here followed', { ref, held: held.digest.digest, followed: following?.to.digest, err })
      return await followed()
    }
    if (fleet.found?.status !== 'resolved') return await followed()
    if (fleet.found.digest === held.digest.digest) {
      // The fleet names the held image again: the move is over.
      if (following !== undefined) fleetRechecks.set(ref, { at: Date.now() })
      return undefined
    }
    // A record is moved by its own publisher only: another trusted node (the gateway, asked
    // first) may not have heard the record yet, and would move the tag back.
    if (held.local !== true && fleet.peer !== held.publisher) {
      logger.info('a trusted peer names another image for a tag whose record another publisher signed: the record stands', { ref, held: held.digest.digest, publisher: held.publisher, digest: fleet.found.digest, peer: fleet.peer })
      return await followed()
    }
    logger.info('a held tag names another image in the fleet now: following it', { ref, held: held.digest.digest, digest: fleet.found.digest, peer: fleet.peer })
    let moved: ResolvedTag
    try {
      moved = await fromFleetAnswer(ref, fleet.found, fleet.peer, signal)
    } catch (err) {
      // The held image still serves: a move that cannot be taken (its manifest refused by the
      // store, the disk) is not worth failing the pull for. Tried again after the interval.
      signal.throwIfAborted()
      logger.warn('could not follow a held tag to the image the fleet names now; serving the one held, or the image a move here followed', { ref, held: held.digest.digest, digest: fleet.found.digest, err })
      return await followed()
    }
    fleetRechecks.set(ref, { at: Date.now(), moved: { from: held.digest, to: moved.digest } })
    return moved
  }

  const resolveTag = async (name: RepositoryName, tag: string, held: ResolvedTag | undefined, { signal }: { signal: AbortSignal }): Promise<ResolvedTag | undefined> => {
    const upstream = own(name)
    const ref = imageRefOf(name, tag)
    if (held !== undefined) {
      // The upstream is the authority for its registry's tags: a moved tag is followed, through
      // this node's own upstream or else through the fleet's.
      if (upstream === undefined) {
        const moved = await recheckInFleet(name, tag, held, signal)
        if (moved !== undefined) return moved
      } else {
        const fresh = await upstream.revalidateTag(name, tag, held.digest, signal)
        if (fresh.hex !== held.digest.hex) return { digest: fresh }
      }
      // Answered from the checked bytes while the store writes them (issue 8's start: the
      // write, ~50 ms at load, was between containerd's HEAD and its answer).
      const storing = storingManifests.get(held.digest.hex)
      if (storing !== undefined) return { ...held, manifest: storing.bytes }
      if (await store.objectBySha256(held.digest.hex) === undefined) {
        const handOver = manifestFromFleet(ref, name, tag, held.digest, signal)
        // The image's bundle starts moving now, while the client reads the manifest, its
        // config and layers in the manifest's order as soon as both are here (layer-order.ts).
        if (held.bundleId !== undefined && blobSource !== undefined) pullRecordBundle(blobSource, ref, held.bundleId, held.digest, handOver.checked)
        const bytes = await handOver.bytes
        if (bytes !== undefined) return { ...held, manifest: bytes }
      }
      return held
    }
    const fleet = await askFleet({ kind: 'resolve-tag', registry: name.host, repository: name.repository, reference: tag, pullThrough: true }, signal)
    if (fleet.found?.status === 'resolved') return await fromFleetAnswer(ref, fleet.found, fleet.peer, signal)
    if (upstream !== undefined) {
      logger.info('tag not in the fleet; falling back to this node\'s upstream', { ref, asked: fleet.misses })
      return { digest: await upstream.manifestByTag(name, tag, signal) }
    }
    logger.info('tag not found in the fleet', { ref, asked: fleet.misses })
    return undefined
  }

  /** A tag a trusted peer resolved: its manifest stored (or answered while it is), its image's bundle adopted or assembled here. */
  const fromFleetAnswer = async (ref: string, found: ResolvedAnswer, peer: string | undefined, signal: AbortSignal): Promise<ResolvedTag> => {
    const { bundleId, mediaType } = found
    const digest = parseDigest(found.digest)
    const manifestBytes = Buffer.from(found.manifest)
    if (bundleId === undefined || blobSource === undefined) {
      await ingestBlobBytes(store, manifestBytes, { sha256: digest.hex, signal })
      logger.info('tag resolved by the fleet', { ref, digest: digest.digest, peer, bundleId })
      // No bundle named (an answerer that resolved it through its upstream only, or an older
      // one): the blobs come one by one and the image is made a bundle here once whole. The
      // fleet's word for the tag: the ref the assembler makes of it stays local.
      assembler.expect(ref, digest.digest, mediaType, { from: 'fleet' })
      return { digest }
    }
    // Bytes that do not hash to the digest are refused by the store's check, as before.
    if (sha256Hex(manifestBytes) !== digest.hex) await ingestBlobBytes(store, manifestBytes, { sha256: digest.hex, signal })
    logger.info('tag resolved by the fleet', { ref, digest: digest.digest, peer, bundleId })
    // Answered from the checked bytes while the store writes them, as a recorded tag's (the
    // write, ~50 ms at load, was between containerd's HEAD and its answer).
    storeBehindAnswer(ref, digest, manifestBytes)
    // The bundle the answerer's ref names moves now as one pull, as a held tag's does: the
    // same bundle the gateway's record (moments away, as a rule) will name.
    adoptFleetBundle(blobSource, { ref, digest, mediaType, bundleId, manifest: manifestBytes, manifestObject: blake3Hex(manifestBytes), peer })
    return { digest, bundleId, manifest: manifestBytes }
  }

  /**
   * Starts the single pull of the image bundle a tag names (or joins the one under way): it
   * waits for the manifest (`manifestHere`, one round trip, as the bundle's description takes)
   * before its first chunk request, so the config and layers come in the manifest's order from
   * the start: a layer asked for later finds its first chunks here and no holes, and the store
   * hashes it from memory as it comes (layer-order.ts). Resolves once the bundle's description
   * is stored; the pull goes on.
   */
  const pullImageBundle = async (source: Required<BlobSource>, bundleId: string, digest: Sha256Digest, manifestHere: Promise<unknown>, wanted?: (signal: AbortSignal) => Promise<boolean>, handedOver?: () => Buffer | undefined): Promise<void> => {
    const firstObjects = async (pullSignal: AbortSignal): Promise<readonly string[]> => {
      await settledWithin(manifestHere, FIRST_OBJECTS_WAIT_MS, pullSignal)
      return await imageObjectOrder(store, digest.hex, handedOver?.())
    }
    await source.fetchBundle(bundleId, { signal: abortAfter(LAYER_ORDER_WAIT_MS), firstObjects, wanted })
  }

  /**
   * A recorded tag's bundle, pulled (pullImageBundle) once its description shows it files the
   * record's manifest. The publisher is trusted, and can still name a wrong bundle by mistake:
   * pulled as named, that fetched another image whole. Judged as the fleet path judges a peer's
   * answer, against the manifest's bytes when the fleet handed them over (checked against the
   * digest), else on the path alone. A wrong one is logged with what the record claimed and what
   * the bundle held, and its pull stops before its first chunk; its description stays (the record
   * names it: Store.dropStoppedBundle), and the handed-over bytes are filed again under their
   * digest, under which the description may have filed other bytes.
   */
  const pullRecordBundle = (source: Required<BlobSource>, ref: string, bundleId: string, digest: Sha256Digest, handedOver: Promise<HandedOver | undefined>): void => {
    let given: HandedOver | undefined
    const here = handedOver.then(manifest => { given = manifest }, () => {})
    const wanted = async (signal: AbortSignal): Promise<boolean> => {
      await settledWithin(here, FIRST_OBJECTS_WAIT_MS, signal)
      const filing = await manifestFiling(store, bundleId, digest, given?.object)
      if (filing === undefined) return true
      if (filing.holds) {
        readByClient(bundleId)
        return true
      }
      const record = await store.getRef(ref)
      logger.warn('a signed ref record names a bundle that does not hold the tag\'s manifest: its pull stopped before its first chunk', {
        ref, claimed: { bundleId, manifestDigest: digest.digest, publisher: record?.publisher, sequence: record?.sequence }, held: filing.held, bundleBlobs: filing.blobs, bundleBytes: filing.bytes,
      })
      return false
    }
    pullImageBundle(source, bundleId, digest, here, wanted, () => given?.bytes).then(() => { assembler.pulled(bundleId) }, async (err: unknown) => {
      if (!(err instanceof UnwantedBundleError) || given === undefined) return
      await ingestBlobBytes(store, given.bytes, { sha256: digest.hex, signal: components.lifetime })
    }).catch((err: unknown) => {
      if (!lifetimeOver()) logger.warn('the manifest handed over for a recorded tag could not be filed again under its digest', { ref, digest: digest.digest, err })
    })
  }

  /**
   * A tag a trusted peer resolved, naming the bundle its ref points at: that bundle is pulled
   * (pullImageBundle) and, once its description is here and it files this manifest under its
   * digest, the tag points at it here as a local ref (RefTarget.local: the publisher's record,
   * when it comes, replaces it; if it came first it is kept). So the image is not made a
   * second time from its blobs (ImageAssembler), which read the layer back and wrote a bundle
   * identical to the one pulled. A bundle that is not this manifest's image, or none within
   * LAYER_ORDER_WAIT_MS, leaves the image to the assembler, as before the answer named one.
   * What the bundle files under blobs/sha256/ is indexed as a recorded tag's bundle is: the
   * same trust (the keys that move tags here), every chunk checked against the bundle. The
   * assembler is told (`pulled`): an earlier answer's pending image is dropped, and the one-blob
   * bundles that moved its blobs before fold into it once it is whole.
   */
  const adoptFleetBundle = (source: Required<BlobSource>, tag: { ref: string, digest: Sha256Digest, mediaType: string, bundleId: string, manifest: Buffer, manifestObject: string, peer?: string }): void => {
    const { ref, digest, bundleId } = tag
    // Judged on the description, which comes before any chunk: a bundle that is not this
    // image's is not pulled on (its pull stops before its first chunk request).
    let filing: ManifestFiling | undefined
    const filesManifest = async (): Promise<boolean> => {
      filing = await manifestFiling(store, bundleId, digest, tag.manifestObject)
      return filing?.holds === true
    }
    const notThisImage = async (): Promise<void> => {
      logger.warn('a peer named a bundle for a tag that does not hold the tag\'s manifest: the image is made a bundle here from its blobs', {
        ref, digest: digest.digest, bundleId, peer: tag.peer, held: filing?.held ?? 'its description is not here', bundleBlobs: filing?.blobs, bundleBytes: filing?.bytes,
      })
      // Its description may have filed other bytes under the manifest's digest: the bytes
      // checked against it are put back under it (after the stopped pull's take-back).
      await ingestBlobBytes(store, tag.manifest, { sha256: digest.hex, signal: components.lifetime })
      assembler.expect(ref, digest.digest, tag.mediaType, { from: 'fleet' })
    }
    const adopt = async (): Promise<void> => {
      try {
        await pullImageBundle(source, bundleId, digest, Promise.resolve(), filesManifest, () => tag.manifest)
      } catch (err) {
        if (err instanceof UnwantedBundleError) return await notThisImage()
        throw err
      }
      // Judged here when no pull of this call's asked it (one under way was joined, or the description was here).
      if (!await filesManifest()) return await notThisImage()
      readByClient(bundleId)
      const set = await store.setRef({ ref, bundleId, manifestDigest: digest.digest, local: true, at: Date.now() })
      assembler.pulled(bundleId, { ref, digest: digest.digest })
      logger.info('tag resolved by the fleet points at the bundle pulled for it', { ref, bundleId, refSet: set ? 'local' : 'kept the trusted record' })
    }
    adopt().catch((err: unknown) => {
      if (lifetimeOver()) return
      logger.info('the bundle a peer named for a tag could not be had: the image is made a bundle here from its blobs', { ref, digest: digest.digest, bundleId, peer: tag.peer, err })
      assembler.expect(ref, digest.digest, tag.mediaType, { from: 'fleet' })
    })
  }
  const lifetimeOver = (): boolean => components.lifetime?.aborted === true
  /**
   * A tag's bundle, judged to file the manifest a client was just answered: in use for the
   * registry's read grace, as a read of a stored manifest makes it (object-lookup.ts
   * useForReading), so the quota does not evict it before the client asks for its config and
   * layers. Marked here, once the description is here and judged: the answer (from the bytes
   * the fleet handed over, or stored) often comes before the description, and a bundle not yet
   * described can be neither evicted nor judged, while a wrong one marked would be kept.
   */
  const readByClient = (bundleId: string): void => { store.useBundle(bundleId, { graceMs: REGISTRY_READ_GRACE_MS })() }

  /** Manifests handed over by the fleet whose store write is under way, by sha256 hex: their bytes, and the write. */
  const storingManifests = new Map<string, { bytes: Buffer, stored: Promise<unknown> }>()
  /**
   * A tag known from a record whose manifest is not here: the trusted peers hand the manifest's
   * bytes over in one round trip, much sooner than the swarm brings the bundle's description and
   * then the manifest's chunk. Taken only when it is the digest the record names and the bytes
   * hash to it; otherwise the swarm path stays. The bytes are given as soon as they are checked;
   * the store's write (file, fdatasync, LevelDB) follows under the daemon's lifetime, not the
   * request's, so a client that leaves once answered does not cut it.
   */
  const manifestFromFleet = (ref: string, name: RepositoryName, tag: string, digest: Sha256Digest, signal: AbortSignal): HandOver => {
    const asked = performance.now()
    let answered = asked
    const bytes = (async (): Promise<Buffer | undefined> => {
      const fleet = await askFleet({ kind: 'resolve-tag', registry: name.host, repository: name.repository, reference: tag, pullThrough: false }, signal)
      if (fleet.found?.status !== 'resolved' || fleet.found.digest !== digest.digest) return undefined
      answered = performance.now()
      const handed = Buffer.from(fleet.found.manifest)
      if (sha256Hex(handed) === digest.hex) return handed
      logger.warn('a trusted peer handed over a recorded tag\'s manifest whose bytes do not match its digest: not taken', { ref, digest: digest.digest, peer: fleet.peer })
      return undefined
    })()
    const checked = bytes.then((handed): HandedOver | undefined => handed === undefined ? undefined : { bytes: handed, object: blake3Hex(handed) })
    void bytes.then(handed => {
      if (handed === undefined) return
      storeBehindAnswer(ref, digest, handed, () => {
        // The two stages of the manifest's time on a neighbour-fed edge (docs/architecture.md, "the cpu4 lane"); the answer needs the first only.
        logger.debug('manifest of a recorded tag handed over by the fleet', { ref, digest: digest.digest, askMs: Math.round(answered - asked), storeMs: Math.round(performance.now() - answered) })
      })
    }, () => {})
    return { bytes, checked }
  }

  /**
   * Writes a tag's manifest, checked against its digest, to the store behind the answer made from
   * its bytes: under the daemon's lifetime, not the request's (a client that leaves once answered
   * does not cut it); meanwhile a request for the digest is answered from them
   * (manifestBeingStored), and a stop waits for the write (close).
   */
  const storeBehindAnswer = (ref: string, digest: Sha256Digest, bytes: Buffer, written?: () => void): void => {
    const stored = ingestBlobBytes(store, bytes, { sha256: digest.hex, signal: components.lifetime }).then(() => { written?.() }, (err: unknown) => {
      if (!lifetimeOver()) logger.warn('the manifest handed over by the fleet could not be stored: asked of the fleet again on the next request', { ref, digest: digest.digest, err })
    })
    const entry = { bytes, stored }
    storingManifests.set(digest.hex, entry)
    void stored.finally(() => { if (storingManifests.get(digest.hex) === entry) storingManifests.delete(digest.hex) })
  }

  /**
   * Whether the object `digest` names came here whole through `bundleId` (a bundle a peer named for
   * it, described here): for a retry after a failed source, when the digest was indexed before
   * (the failed bundle's description), so an index entry says nothing of whether its bytes can be
   * had. The object is pulled from that bundle and waited for (a manifest: a few KiB); a pull
   * with no holder ends at the swarm's word (Swarm.untilNoHolder), said at info.
   */
  const wholeThrough = async (bundleId: string, digest: Sha256Digest, peer: string | undefined, signal: AbortSignal): Promise<boolean> => {
    const object = await store.objectBySha256(digest.hex)
    const described = await store.requireBundle(bundleId).catch(() => undefined)
    if (object === undefined || blobSource === undefined || described?.objectSizes.has(object) !== true) {
      if (described !== undefined) logger.warn('a peer named a bundle for a digest that the bundle does not hold', { digest: digest.digest, bundleId, peer })
      return false
    }
    try {
      await blobSource.fetchObject(bundleId, object, { signal })
    } catch (err) {
      signal.throwIfAborted()
      logger.info('the bundle a peer named for a digest did not bring it', { digest: digest.digest, bundleId, peer, reason: err instanceof Error ? err.message : String(err) })
      return false
    }
    return await store.wholeObjectBySha256(digest.hex) !== undefined
  }

  /**
   * Step 2 for a digest: the bundle a trusted peer names for it, whose description makes the
   * store index the digest (its chunks follow through the swarm, streamed to the client as they
   * are verified). True once the digest is indexed here (`whole`: once its object is here whole,
   * see wholeThrough); with what the peers said otherwise.
   */
  const fromFleetBundles = async (name: RepositoryName, digest: Sha256Digest, manifest: boolean, signal: AbortSignal, whole = false): Promise<true | FleetResult['misses']> => {
    // A blob is looked up in the fleet's stores only: a pull-through streams it (below)
    // rather than answering with a bundle once the whole blob is at the pull-through node.
    const query: FleetQuery = { kind: 'find-digest', registry: name.host, repository: name.repository, reference: digest.digest, pullThrough: manifest, manifest }
    let fleet = await askFleet(query, signal)
    let named: string | undefined
    // Asked twice at most: the bundle a peer named can be gone by the time we fetch it (its
    // one-blob bundle folded into the image's bundle once that was whole, see foldBlobBundles),
    // and the same question then names the bundle that holds it now.
    for (let attempt = 0; attempt < 2 && fleet.found?.status === 'found' && blobSource !== undefined && fleet.found.bundleId !== named; attempt++) {
      named = fleet.found.bundleId
      try {
        await blobSource.fetchBundle(named, { signal })
      } catch (err) {
        signal.throwIfAborted()
        logger.info('the bundle a peer named for a digest could not be fetched', { digest: digest.digest, bundleId: named, peer: fleet.peer, err })
      }
      if (whole ? await wholeThrough(named, digest, fleet.peer, signal) : await store.objectBySha256(digest.hex) !== undefined) return true
      if (await store.getBundle(named) !== undefined) {
        if (!whole) logger.warn('a peer named a bundle for a digest that the bundle does not hold', { digest: digest.digest, bundleId: named, peer: fleet.peer })
        break
      }
      if (attempt === 0) fleet = await askFleet(query, signal)
    }
    return fleet.misses
  }

  /**
   * Step 2 for a manifest asked by a tag a ref here names: that ref's bundle (a signed record's),
   * whose description indexes the manifest; its chunks follow through the swarm. True once the
   * digest is indexed here.
   */
  const fromRefBundle = async (name: RepositoryName, digest: Sha256Digest, bundleId: string, signal: AbortSignal): Promise<boolean> => {
    if (blobSource === undefined) return false
    try {
      await blobSource.fetchBundle(bundleId, { signal })
    } catch (err) {
      signal.throwIfAborted()
      // The source answers fast when no peer holds it: said at info, the next sources are asked.
      logger.info('the bundle a ref record names could not be had from the fleet', { ref: `${name.host}/${name.repository}`, digest: digest.digest, bundleId, reason: err instanceof Error ? err.message : String(err) })
    }
    return await store.objectBySha256(digest.hex) !== undefined
  }

  const locate = async (name: RepositoryName, digest: Sha256Digest, { signal, manifest, failed, refBundle }: { signal: AbortSignal, manifest: boolean, failed?: FailedSource, refBundle?: string }): Promise<boolean | IncomingBlob> => {
    // What the sources before the next one said: the peers' misses, or the source that failed.
    let asked: FleetResult['misses'] | FailedSource
    if (failed === undefined) {
      if (manifest && refBundle !== undefined && await fromRefBundle(name, digest, refBundle, signal)) return true
      const found = await fromFleetBundles(name, digest, manifest, signal)
      if (found === true) return true
      asked = found
    } else {
      // Said at info with the reason: which source failed, and that the next are asked (issue 8).
      logger.info('a source failed for this digest before the first byte: asking the next sources', { name: name.path, digest: digest.digest, failed: failed.source, reason: failed.reason })
      asked = failed
      // A manifest is not streamed by the fleet's pull-through: the fleet is asked (its first
      // time when the digest was indexed here before) for a bundle that brings it whole, which a
      // node with an upstream makes. Before, an edge without an upstream answered 404 here.
      if (manifest && await fromFleetBundles(name, digest, true, signal, true) === true) return true
    }
    if (!manifest && fleetBlobs !== undefined) {
      const streamed = await fleetBlobs.open(name, digest, signal)
      if (streamed !== undefined) return streamed
      // Another request's stream may have finished while this one asked (whole: a bundle's
      // description indexes the digest of an object that is not here).
      if (await store.wholeObjectBySha256(digest.hex) !== undefined) return true
    }
    const upstream = own(name)
    if (upstream !== undefined) {
      logger.info('digest not in the fleet; falling back to this node\'s upstream', { name: name.path, digest: digest.digest, asked })
      if (!manifest) return await upstream.openBlob(name, digest, signal)
      await upstream.manifestByDigest(name, digest, signal)
      return await store.wholeObjectBySha256(digest.hex) !== undefined
    }
    logger.info('digest not found in the fleet', { name: name.path, digest: digest.digest, asked })
    return false
  }

  let refusedPullThroughLogged = false
  /** The upstream a peer may make this node fetch from: none unless the fleet is keyed (the first refusal is logged, once). */
  const pullThroughFor = (from: string): PullThrough | undefined => {
    if (pullThrough === undefined || components.pullThroughForPeers === true) return pullThrough
    if (!refusedPullThroughLogged) {
      refusedPullThroughLogged = true
      logger.info('a peer asked this node to pull through; only answered from the store: pull-through for peers needs a fleet closed with a swarm key (--swarm-key)', { for: from })
    }
    return undefined
  }

  /** What an asker is told when this node has an upstream but, the fleet being open, does not use it for peers. */
  const withheldFrom = (asked: boolean): string | undefined => asked && pullThrough !== undefined && components.pullThroughForPeers !== true
    ? 'this node pulls through for peers only in a fleet closed with a swarm key (--swarm-key on every node), and this fleet is open'
    : undefined

  // A one-blob bundle is a write and an announce: only for a peer the swarm acts for.
  const mayBundleFor = (from: string): boolean => swarm?.actsFor(from) === true

  const respond: FleetResponder = async (query, from, signal) => {
    return await answerFleet({ store, pullThrough: query.pullThrough ? pullThroughFor(from) : undefined, pullThroughWithheld: withheldFrom(query.pullThrough), mayBundle: mayBundleFor(from), logger }, query, from, signal)
  }

  const respondBlob: FleetBlobResponder = async (query, from, signal) => {
    return await answerFleetBlob({ store, pullThrough: pullThroughFor(from), pullThroughWithheld: withheldFrom(true), incoming: fleetBlobs === undefined ? undefined : async (digest, s) => await fleetBlobs.incoming(digest, s), logger }, query, from, signal)
  }

  // Blobs of an image arrive from the swarm too: each completed object may finish one.
  store.on('object:complete', () => { assembler.check() })

  const manifestBeingStored = (digest: Sha256Digest): Buffer | undefined => storingManifests.get(digest.hex)?.bytes

  /** Waits for the manifests' store writes under way (they follow the answer): a stop closes the store after them, not under them. */
  const close = async (): Promise<void> => {
    await Promise.all([...storingManifests.values()].map(async entry => { await entry.stored }))
  }

  return { resolveTag, locate, manifestBeingStored, respond, respondBlob, close }
}
