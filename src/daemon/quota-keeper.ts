import { enforceQuota, type Store, type StoreEvents } from '../store/index.js'
import type { Logger } from './logger.js'

/**
 * Enforces `--quota` after every write, whatever wrote (a push, a pull's objects completing,
 * pull-through, a registry push): each adds a bundle or completes an object, and the store
 * says so. Runs are serialized and coalesced — events during a run cause one more run, not
 * one each — so a pull of many objects costs a few passes, not one per object.
 */
export function createQuotaKeeper (store: Store, logger: Logger): { close: () => Promise<void>, settled: () => Promise<void> } {
  if (store.quotaBytes === undefined) return { close: async () => {}, settled: async () => {} }
  const lifetime = new AbortController()
  let running: Promise<void> | undefined
  let again = false
  let graceTimer: NodeJS.Timeout | undefined
  const run = async (): Promise<void> => {
    do {
      again = false
      try {
        const evicted = await enforceQuota(store, { signal: lifetime.signal })
        if (evicted.length > 0) logger.info('evicted bundles to stay within the quota', { evicted, quotaBytes: store.quotaBytes })
      } catch (err) {
        if (!lifetime.signal.aborted) logger.warn('enforcing the quota failed; the next write tries again', { err })
      }
    } while (again && !lifetime.signal.aborted)
    // A bundle a registry client read lately is spared for a grace; when that ends, look again,
    // or a store left over its quota by it would stay so until the next write.
    clearTimeout(graceTimer)
    const graceEnd = store.nextGraceEnd()
    if (graceEnd !== undefined && !lifetime.signal.aborted) graceTimer = setTimeout(schedule, graceEnd - Date.now() + 1).unref()
  }
  const schedule = (): void => {
    if (lifetime.signal.aborted) return
    if (running !== undefined) {
      again = true
      return
    }
    running = run().finally(() => { running = undefined })
  }
  const onEvictedAhead = ({ ids, for: what }: StoreEvents['quota:evicted']): void => {
    logger.info('evicted bundles to make room on the disk for a pull, within the quota', { evicted: ids, for: what, quotaBytes: store.quotaBytes })
  }
  store.on('bundle:added', schedule)
  store.on('object:complete', schedule)
  store.on('bundle:released', schedule)
  store.on('quota:evicted', onEvictedAhead)
  schedule()
  return {
    /** Resolves when no run is under way (one a write caused, and those it caused in turn). */
    settled: async () => { while (running !== undefined) await running },
    close: async () => {
      store.off('bundle:added', schedule)
      store.off('object:complete', schedule)
      store.off('bundle:released', schedule)
      store.off('quota:evicted', onEvictedAhead)
      clearTimeout(graceTimer)
      lifetime.abort(new Error('the daemon is stopping'))
      await running
    },
  }
}
