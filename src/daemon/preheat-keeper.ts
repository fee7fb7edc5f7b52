import type { PreheatControl, PreheatIssued, PreheatRequest, PreheatState, PreheatStatus } from '../http/index.js'
import type { Store } from '../store/index.js'
import type { Swarm, VerifiedPreheatRecord } from '../swarm/index.js'
import { formatPlatform, formatSelector, parsePlatform, parseSelector, platformOfLabels, selectorMatches, type NodeLabels } from '../labels/index.js'
import { wakeOrTimeout, Wakers } from '../wait/index.js'
import type { Logger } from './logger.js'
import { platformObjects } from './platform-objects.js'

export interface PreheatKeeperComponents {
  store: Store
  swarm: Swarm
  logger: Logger
  labels: NodeLabels
  /** Told whenever the counts change (the metrics' gauges). */
  onCounts?: (counts: { wanted: number, complete: number }) => void
}

/** Preheat pulls at once: they are background work, behind what containerd asks for. */
export const MAX_CONCURRENT_PREHEATS = 2
/** A failed preheat pull is tried again after this, doubling up to the maximum, or at once when a neighbour joins. */
export const PREHEAT_RETRY_MIN_MS = 2_000
export const PREHEAT_RETRY_MAX_MS = 60_000

interface Entry {
  record: VerifiedPreheatRecord
  status: PreheatStatus
  job?: AbortController
}

/**
 * Acts on preheat records (the swarm's /shoal/preheat gossip, kept in the store): for every live
 * record whose selector matches this node's labels, pull the bundle in the background — only
 * this node's platform's objects of a multi-platform image — and pin it once it is here, so the
 * quota never evicts it. A cancel (or a newer record that no longer matches) stops the pull and
 * unpins; `shoal unpin` releases it here until a newer record asks again. Records survive a
 * restart in the store, so a restarted node resumes where its partial objects left off.
 *
 * Priority: a preheat is a background swarm pull: the scheduler asks for its chunks only while no
 * other pull (containerd's, through the registry API) has a chunk some peer could send, so
 * containerd's pulls go ahead of preheats. Rate caps apply to all swarm traffic alike.
 */
export class PreheatKeeper implements PreheatControl {
  private readonly entries = new Map<string, Entry>()
  private readonly queue: string[] = []
  private running = 0
  private readonly lifetime = new AbortController()
  private readonly retryNow = new Wakers()
  private readonly jobs = new Set<Promise<void>>()

  constructor (private readonly components: PreheatKeeperComponents) {}

  /** Loads the records kept from before a restart and follows new ones. */
  async start (): Promise<void> {
    this.components.swarm.on('preheat:accepted', this.onRecord)
    this.components.swarm.on('neighbour:joined', this.onNeighbour)
    for (const record of await this.components.swarm.preheatRecords()) await this.apply(record)
  }

  async close (): Promise<void> {
    this.components.swarm.off('preheat:accepted', this.onRecord)
    this.components.swarm.off('neighbour:joined', this.onNeighbour)
    this.lifetime.abort(new Error('the daemon is stopping'))
    await Promise.allSettled([...this.jobs])
  }

  status (): PreheatStatus[] {
    return [...this.entries.values()].map(e => ({ ...e.status }))
  }

  /**
   * `shoal preheat REF|ID [--nodes SEL] [--platform P] [--cancel]` on this node: a signed record
   * for the fleet. Nodes apply it only if they trust this node's publisher key (`--trust`).
   */
  async issue (request: PreheatRequest): Promise<PreheatIssued> {
    const { store, swarm } = this.components
    const selector = parseSelector(request.nodes ?? '')
    const platform = request.platform === undefined || request.platform === '' ? undefined : parsePlatform(request.platform)
    const byId = /^[0-9a-f]{64}$/.test(request.ref)
    // A cancel may name a bundle this node no longer holds: the record it cancels knows it.
    const known = request.cancel === true && !byId ? [...this.entries.values()].find(e => e.record.ref === request.ref)?.record.bundleId : undefined
    const bundleId = byId ? request.ref : known ?? await store.resolve(request.ref)
    const record = await swarm.publishPreheat({
      bundleId, ...(byId ? {} : { ref: request.ref }), selector, ...(platform !== undefined ? { platform } : {}), cancelled: request.cancel === true,
    })
    return {
      bundleId, ...(record.ref !== undefined ? { ref: record.ref } : {}), selector: formatSelector(selector),
      ...(platform !== undefined ? { platform: formatPlatform(platform) } : {}), cancelled: record.cancelled, sequence: record.sequence, publisher: record.publisher,
    }
  }

  async unpin (idOrRef: string): Promise<{ bundleId: string, preheated: boolean }> {
    const bundleId = await this.components.store.resolve(idOrRef)
    await this.components.store.setPinned(bundleId, false)
    const preheated = this.entries.has(bundleId)
    if (preheated) await this.release(bundleId)
    return { bundleId, preheated }
  }

  /** `shoal unpin`: stop holding this bundle for its preheat (the store remembers, across restarts). */
  async release (bundleId: string): Promise<void> {
    const entry = this.entries.get(bundleId)
    entry?.job?.abort(new Error('unpinned by the operator'))
    await this.components.store.releasePreheat(bundleId)
    if (entry !== undefined && entry.status.state !== 'cancelled' && entry.status.state !== 'not-matching') this.setState(entry, 'released')
  }

  private readonly onRecord = (record: VerifiedPreheatRecord): void => {
    this.apply(record).catch((err: unknown) => { this.components.logger.warn('acting on a preheat record failed', { bundleId: record.bundleId, err }) })
  }

  private readonly onNeighbour = (): void => {
    this.retryNow.wakeAll()
  }

  private async apply (record: VerifiedPreheatRecord): Promise<void> {
    const { logger, labels, store } = this.components
    const held = this.entries.get(record.bundleId)
    if (held !== undefined && held.record.sequence >= record.sequence) return
    held?.job?.abort(new Error('a newer preheat record replaced this one'))
    const status: PreheatStatus = {
      bundleId: record.bundleId, ...(record.ref !== undefined ? { ref: record.ref } : {}), selector: formatSelector(record.selector),
      ...(record.platform !== undefined ? { platform: formatPlatform(record.platform) } : {}), publisher: record.publisher, sequence: record.sequence,
      state: 'waiting', presentBytes: held?.status.presentBytes ?? 0, totalBytes: held?.status.totalBytes ?? 0,
    }
    const entry: Entry = { record, status }
    this.entries.set(record.bundleId, entry)
    const matches = selectorMatches(record.selector, labels)
    if (record.cancelled || !matches) {
      // It was ours to hold under an older record: release the pin so the quota may evict it
      // (before the state says so: a status reader then sees the pin gone).
      if (held !== undefined && held.status.state !== 'not-matching' && held.status.state !== 'cancelled') await this.unpinHere(record.bundleId)
      this.setState(entry, record.cancelled ? 'cancelled' : 'not-matching')
      if (record.cancelled && held !== undefined) logger.info('preheat cancelled', { bundleId: record.bundleId, ref: record.ref })
      return
    }
    if (await store.isPreheatReleased(record.bundleId)) {
      this.setState(entry, 'released')
      return
    }
    logger.info('preheat accepted for this node', { bundleId: record.bundleId, ref: record.ref, selector: status.selector, publisher: record.publisher })
    this.queue.push(record.bundleId)
    this.pump()
  }

  private pump (): void {
    while (this.running < MAX_CONCURRENT_PREHEATS && this.queue.length > 0 && !this.lifetime.signal.aborted) {
      const id = this.queue.shift()
      const entry = id === undefined ? undefined : this.entries.get(id)
      if (entry === undefined || entry.status.state !== 'waiting' || entry.job !== undefined) continue
      this.running++
      const job = this.run(entry).finally(() => {
        this.running--
        this.jobs.delete(job)
        this.pump()
      })
      this.jobs.add(job)
    }
  }

  /** Pulls until complete, retrying after failures; ends when complete, replaced, released or stopping. */
  private async run (entry: Entry): Promise<void> {
    const { store, swarm, logger, labels } = this.components
    const controller = new AbortController()
    entry.job = controller
    const signal = AbortSignal.any([controller.signal, this.lifetime.signal])
    const id = entry.record.bundleId
    // In use while it arrives, and until it is pinned: the quota evicts others, never this one.
    const release = store.useBundle(id)
    let delay = PREHEAT_RETRY_MIN_MS
    try {
      while (!signal.aborted) {
        this.setState(entry, 'pulling')
        try {
          const platform = entry.record.platform ?? platformOfLabels(labels)
          const objects = await platformObjects({ store, swarm }, id, platform, { signal })
          await swarm.pull(id, {
            signal,
            // Behind every other pull: a containerd pull on this node takes the link first.
            background: true,
            ...(objects !== undefined ? { objects } : {}),
            onProgress: p => { entry.status.presentBytes = p.presentBytes; entry.status.totalBytes = p.totalBytes },
          })
          const sizes = (await store.requireBundle(id)).objectSizes
          const total = [...sizes].filter(([hash]) => objects === undefined || objects.has(hash)).reduce((sum, [, size]) => sum + size, 0)
          entry.status.presentBytes = total
          entry.status.totalBytes = total
          if (signal.aborted) return
          await store.setPinned(id, true)
          delete entry.status.error
          this.setState(entry, 'complete')
          logger.info('preheat complete: bundle held and pinned', { bundleId: id, ref: entry.record.ref, bytes: total, platformOnly: objects !== undefined })
          return
        } catch (err) {
          if (signal.aborted) return
          entry.status.error = err instanceof Error ? err.message : String(err)
          this.setState(entry, 'failed')
          logger.warn('preheat pull failed; trying again', { bundleId: id, retryInMs: delay, err })
          await this.waitToRetry(delay, signal)
          delay = Math.min(delay * 2, PREHEAT_RETRY_MAX_MS)
        }
      }
    } finally {
      release()
      if (entry.job === controller) delete entry.job
    }
  }

  /** Waits `ms`, or less when a neighbour joins (a holder may have come), or until aborted. */
  private async waitToRetry (ms: number, signal: AbortSignal): Promise<void> {
    await wakeOrTimeout(this.retryNow.subscribe, { timeoutMs: ms, signal })
  }

  private async unpinHere (bundleId: string): Promise<void> {
    // Its record alone: listBundles would work out every bundle's progress to read one flag.
    if ((await this.components.store.bundleRecord(bundleId))?.pinned === true) await this.components.store.setPinned(bundleId, false)
  }

  private setState (entry: Entry, state: PreheatState): void {
    entry.status.state = state
    let wanted = 0
    let complete = 0
    for (const e of this.entries.values()) {
      if (e.status.state === 'cancelled' || e.status.state === 'not-matching' || e.status.state === 'released') continue
      wanted++
      if (e.status.state === 'complete') complete++
    }
    this.components.onCounts?.({ wanted, complete })
  }
}
