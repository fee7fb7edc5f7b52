import { SourceIncompleteError, type BlobSource } from '../http/index.js'
import { RecentSet } from '../recent/index.js'
import { NoRoomError, type Store, type StoreEvents } from '../store/index.js'
import { NoHolderError, type PullOptions, type Swarm } from '../swarm/index.js'
import { wakeOrTimeout, type Subscribe } from '../wait/index.js'
import type { Logger } from './logger.js'

/**
 * Lets the registry API serve what is still on its way: the swarm pulls the whole bundle
 * (the edge wants the image anyway) with the waiting object first, and a request is answered
 * as soon as what it needs is here — the bundle's description for a manifest known only from
 * a ref record, one object for a blob. Pulls outlive requests, so a client that gives up
 * does not stop others waiting on the same bundle.
 */
/**
 * How long a registry request for a tag known only from a ref record looks for a peer holding
 * its bundle. No holder within this is a 404, so containerd moves on to its next host
 * quickly (issue 8: "a 404 comes fast, within a second, when no one holds the thing"). It
 * bounds finding a holder only: a peer that has answered that it holds the bundle sends it
 * under the bundle protocol's stall rule (manifest-search.ts), because on a loaded machine
 * 1 s is too short for a transfer that is making progress. And the search ends sooner once
 * every connected peer said "not here" and one DHT lookup named nobody (`searchOnce`, as `shoal
 * pull` has it): an edge that heard of a tag whose holders are all gone answered its 404 only
 * at this bound (1.1 s from the request, load 7), now at once.
 */
const HTTP_MANIFEST_SEARCH_TIMEOUT_MS = 1_000
/** Bundles stopped as not wanted that are remembered (see `stopped`): each a few bytes, one per wrong answer. */
const STOPPED_BUNDLES_KEPT = 256

/**
 * `manifestSearchTimeoutMs`: HTTP_MANIFEST_SEARCH_TIMEOUT_MS unless given (a test lengthens it to
 * show that an answer came from the peers' answers, not from this bound).
 */
export function swarmBlobSource (store: Store, swarm: Swarm, logger: Logger, lifetime: AbortSignal, { manifestSearchTimeoutMs = HTTP_MANIFEST_SEARCH_TIMEOUT_MS }: { manifestSearchTimeoutMs?: number } = {}): Required<BlobSource> {
  /** Pulls of whole bundles, by bundle ID, shared by every request that wants one; `stop` ends one judged unwanted after it began. */
  const bundlePulls = new Map<string, { running: Promise<void>, stop: AbortController }>()
  /**
   * Pulls of one object alone, of a bundle the disk has no room for whole: by bundle ID, then
   * object hash (its own map: a whole bundle's pull never stands for one of these, nor the reverse).
   */
  const objectPulls = new Map<string, Map<string, Promise<void>>>()
  /**
   * Bundles whose pull the disk had no room for: said once each (every manifest request of
   * the image starts its pull again, refused each time by a statfs before any chunk is asked
   * for), until one of their pulls is let through.
   */
  const refusedForRoom = new Set<string>()
  /**
   * Bundles whose pull a `wanted` stopped: another image's bundle, named for a tag it does not
   * hold. A blob they do hold (a shared base layer) is still had from them, alone: a blob
   * request that had joined the pull got a 404 for a blob the fleet held (containerd then went
   * upstream), and one that came after it pulled the other image whole, the fetch the stop was
   * there to spare. Forgotten when a later pull's `wanted` judges the bundle again.
   */
  const stopped = new RecentSet<string>(STOPPED_BUNDLES_KEPT)
  const failed = (bundleId: string, err: unknown): void => {
    if (err instanceof UnwantedBundleError) return // said where it was judged (takeBack)
    if (!(err instanceof NoRoomError)) {
      logger.warn('pull for an HTTP client failed', { bundleId, err })
    } else if (!refusedForRoom.has(bundleId)) {
      refusedForRoom.add(bundleId)
      logger.info('pull for an HTTP client not started: the disk has no room for what the bundle lacks (a blob a client asks for is still fetched alone when it fits); asked again on the next request', { bundleId, neededBytes: err.neededBytes, freeBytes: err.freeBytes, err })
    }
  }
  /**
   * A bundle judged unwanted on its description: its pull is stopped, and what the pull added
   * (the description, the sha256 entries it filed) is taken back unless something else holds
   * the bundle (Store.dropStoppedBundle): left, it stayed a bundle of none of its objects until
   * gc, `rm` or the quota took it, listed by `shoal ls` and offered to neighbours.
   */
  const takeBack = async (bundleId: string): Promise<void> => {
    stopped.add(bundleId)
    const outcome = await store.dropStoppedBundle(bundleId).catch((err: unknown) => {
      logger.warn('the description of a stopped pull could not be removed', { bundleId, err })
      return 'failed to remove'
    })
    logger.info('pull stopped before its first chunk: the bundle is not what it was asked for', {
      bundleId, description: outcome === 'removed' ? outcome : `kept (${outcome})`,
    })
  }
  const pull = (bundleId: string, { signal, ...options }: Pick<PullOptions, 'priorityObject' | 'firstObjects' | 'objects' | 'signal'>): Promise<void> =>
    swarm.pull(bundleId, { ...options, signal: signal === undefined ? lifetime : AbortSignal.any([lifetime, signal]), manifestSearchTimeoutMs, searchOnce: true })
  /**
   * The pull of all of `bundleId`, shared by every request that wants it; one `wanted` says no to
   * stops with nothing fetched. `judged`, when this call's `wanted` is asked: settles with its
   * answer (rejected with UnwantedBundleError once what the pull added is taken back).
   */
  const startBundlePull = (bundleId: string, first: Pick<PullOptions, 'priorityObject' | 'firstObjects'> & { wanted?: (signal: AbortSignal) => Promise<boolean> } = {}): { running: Promise<void>, judged?: Promise<void> } => {
    const under = bundlePulls.get(bundleId)
    if (under === undefined) {
      if (first.wanted !== undefined) stopped.delete(bundleId)
      const stop = new AbortController()
      const { options, judged } = withWanted(bundleId, first, stop, takeBack)
      const running = pull(bundleId, options).finally(() => { bundlePulls.delete(bundleId) })
      bundlePulls.set(bundleId, { running, stop })
      running.then(() => { refusedForRoom.delete(bundleId) }, (err: unknown) => { failed(bundleId, err) })
      return { running, judged }
    }
    if (first.firstObjects !== undefined) {
      // A pull already under way (another client): the order comes when it can.
      first.firstObjects(lifetime).then(
        objects => { for (const object of [...objects].reverse()) swarm.prioritize(object) },
        () => {},
      )
    }
    return { running: under.running }
  }
  /**
   * `wanted` asked of a bundle whose description is here without this call's pull having asked it:
   * one under way that a blob request started first, or an earlier one. A no stops the pull under
   * way (its joined blob requests then have their objects alone: `stopped`) and takes back what it
   * added, and rejects with UnwantedBundleError, as a no before the first chunk does; with no pull
   * under way nothing is taken back (the bundle was had for something else).
   */
  const judgeHere = async (bundleId: string, wanted: (signal: AbortSignal) => Promise<boolean>, signal: AbortSignal): Promise<void> => {
    if (await wanted(signal)) {
      stopped.delete(bundleId)
      return
    }
    const under = bundlePulls.get(bundleId)
    if (under !== undefined) {
      under.stop.abort(new UnwantedBundleError(bundleId))
      await takeBack(bundleId)
    }
    throw new UnwantedBundleError(bundleId)
  }
  /**
   * The pull of `object` alone, of `bundleId`, shared by every request that waits on it; with no
   * object, of the bundle's description alone (a stopped bundle a peer named for a blob: the
   * lookup needs what it files, not its other objects).
   */
  const startObjectPull = (bundleId: string, object?: string): Promise<void> => {
    const ofBundle = objectPulls.get(bundleId) ?? new Map<string, Promise<void>>()
    const key = object ?? ''
    let running = ofBundle.get(key)
    if (running === undefined) {
      running = pull(bundleId, { priorityObject: object, objects: new Set(object === undefined ? [] : [object]) }).finally(() => {
        ofBundle.delete(key)
        if (ofBundle.size === 0) objectPulls.delete(bundleId)
      })
      ofBundle.set(key, running)
      objectPulls.set(bundleId, ofBundle)
      running.catch((err: unknown) => { failed(bundleId, err) })
    }
    return running
  }
  return {
    fetchBundle: async (bundleId, { signal, firstObjects, wanted }) => {
      const done = new AbortController()
      const added = untilStored(storeEvent(store, 'bundle:added', e => e.id === bundleId), signal, done.signal)
      try {
        if (await store.getBundle(bundleId) !== undefined) {
          if (wanted !== undefined) await judgeHere(bundleId, wanted, signal)
          return
        }
        if (wanted === undefined && stopped.has(bundleId)) {
          await Promise.race([added, startObjectPull(bundleId)])
          return
        }
        // A pull that fails before the manifest arrives fails this request too, with its reason.
        // Judged by `wanted`, it settles with the verdict instead: after a no, once the
        // description is taken back, so the caller's own writes come after that.
        const { running, judged } = startBundlePull(bundleId, { firstObjects, wanted })
        await Promise.race([judged ?? added, running])
        // Joined a pull under way that no `wanted` of this kind asked about: judged now.
        if (judged === undefined && wanted !== undefined) await judgeHere(bundleId, wanted, signal)
      } finally {
        done.abort()
      }
    },
    fetchObject: async (bundleId, object, { signal }) => {
      const done = new AbortController()
      const completed = untilStored(storeEvent(store, 'object:complete', e => e.object === object), signal, done.signal)
      let release = (): void => {}
      try {
        if (await store.hasObject(object)) return
        // A client waits on it from now until it leaves: ahead of the pull's manifest order.
        release = swarm.waitFor(object)
        // Had alone, when the registry checked that it fits: a bundle the disk has no room for
        // whole (containerd still gets its layers one by one), or one stopped as not what it was
        // asked for (stopped, above), at once if its pull stopped before this request or when the
        // pull this request joined stops.
        const whole = stopped.has(bundleId) ? Promise.reject(new UnwantedBundleError(bundleId)) : startBundlePull(bundleId, { priorityObject: object }).running
        const pulled = whole.catch(async (err: unknown) => {
          if (!(err instanceof NoRoomError) && !(err instanceof UnwantedBundleError)) throw err
          await startObjectPull(bundleId, object)
        }).then(async () => {
          // The pull is over: the object is here, or it will not come from it (no timer to wait out).
          if (!await store.hasObject(object)) throw new SourceIncompleteError(object)
        })
        // The swarm says when no peer holds it (or is about to send it): the request then asks
        // the next source at once, not after the first-chunk wait (issue 8); the pull goes on.
        const noHolder = swarm.untilNoHolder(bundleId, object, { signal: AbortSignal.any([signal, done.signal]) }).then(verdict => {
          throw new NoHolderError(bundleId, object, verdict.reason)
        })
        // Awaited only until the race is settled; its abort at the end must not crash the daemon.
        noHolder.catch(() => {})
        await Promise.race([completed, pulled, noHolder])
      } finally {
        release()
        done.abort()
      }
    },
  }
}

/** A pull's asker said, once the bundle's description was here, that it is not what it wanted. */
export class UnwantedBundleError extends Error {
  readonly code = 'BUNDLE_NOT_WANTED'
  constructor (readonly bundleId: string) {
    super(`the bundle ${bundleId} is not what its pull was started for: stopped before any chunk was asked for`)
    this.name = 'UnwantedBundleError'
  }
}

/**
 * The pull's options, stopped by `stop`, with `wanted` asked where the swarm asks for the first
 * objects: after the description is stored, before any chunk request. A no aborts `stop`, takes back
 * what the pull added (`takeBack`) and rejects, and the swarm rethrows the abort
 * (PullOptions.firstObjects), so nothing is fetched. `judged` settles with the answer.
 */
function withWanted (bundleId: string, options: Pick<PullOptions, 'priorityObject' | 'firstObjects'> & { wanted?: (signal: AbortSignal) => Promise<boolean> }, stop: AbortController, takeBack: (bundleId: string) => Promise<void>): { options: Pick<PullOptions, 'priorityObject' | 'firstObjects' | 'signal'>, judged?: Promise<void> } {
  const { wanted, firstObjects, priorityObject } = options
  if (wanted === undefined) return { options: { priorityObject, firstObjects, signal: stop.signal } }
  let verdict: { resolve: () => void, reject: (err: unknown) => void } | undefined
  const judged = new Promise<void>((resolve, reject) => { verdict = { resolve, reject } })
  // Awaited only while the caller waits; a verdict nobody awaits any more must not crash the daemon.
  judged.catch(() => {})
  return {
    judged,
    options: {
      priorityObject,
      signal: stop.signal,
      firstObjects: async (signal) => {
        if (!await wanted(signal)) {
          stop.abort(new UnwantedBundleError(bundleId))
          await takeBack(bundleId)
          verdict?.reject(stop.signal.reason)
          throw stop.signal.reason
        }
        verdict?.resolve()
        return firstObjects === undefined ? [] : await firstObjects(signal)
      },
    },
  }
}

/** Subscribes a waker to the store's `event`, woken by the details that `match`. */
function storeEvent<E extends keyof StoreEvents> (store: Store, event: E, match: (detail: StoreEvents[E]) => boolean): Subscribe {
  return wake => {
    const onEvent = (detail: StoreEvents[E]): void => { if (match(detail)) wake() }
    store.on(event, onEvent)
    return () => { store.off(event, onEvent) }
  }
}

/**
 * Resolves when the store event comes; rejects with the reason when `signal` aborts; `done`
 * detaches it once the caller no longer waits. It subscribes at once, so an event that comes
 * while the caller still checks the store is not missed.
 */
function untilStored (subscribe: Subscribe, signal: AbortSignal, done: AbortSignal): Promise<void> {
  const stored = wakeOrTimeout(subscribe, { signal: AbortSignal.any([signal, done]) }).then(outcome => {
    if (outcome === 'aborted') signal.throwIfAborted()
  })
  // Awaited only on some paths; a rejection nobody awaits must not crash the daemon.
  stored.catch(() => {})
  return stored
}
