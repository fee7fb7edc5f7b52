import type { BlobSource } from '../http/index.js'
import type { Store } from '../store/index.js'
import type { Swarm } from '../swarm/index.js'
import type { Logger } from './logger.js'

/**
 * Lets the registry API serve a blob that is still on its way: the swarm pulls the whole
 * bundle (the edge wants the image anyway) with the waiting object first, and the request
 * is answered as soon as that one object is complete. The pull outlives the request, so a
 * client that gives up does not stop the others waiting on the same bundle.
 */
export function swarmBlobSource (store: Store, swarm: Swarm, logger: Logger, lifetime: AbortSignal): BlobSource {
  const pulls = new Map<string, Promise<void>>()
  return {
    fetchObject: async (bundleId, object, { signal }) => {
      if (await store.hasObject(object)) return
      const completed = new Promise<void>((resolve, reject) => {
        const onComplete = ({ object: done }: { object: string }): void => {
          if (done !== object) return
          cleanup()
          resolve()
        }
        const onAbort = (): void => { cleanup(); reject(signal.reason) }
        const cleanup = (): void => { store.off('object:complete', onComplete); signal.removeEventListener('abort', onAbort) }
        store.on('object:complete', onComplete)
        signal.addEventListener('abort', onAbort, { once: true })
      })
      swarm.prioritize(object)
      let pull = pulls.get(bundleId)
      if (pull === undefined) {
        pull = swarm.pull(bundleId, { signal: lifetime, priorityObject: object }).finally(() => { pulls.delete(bundleId) })
        pulls.set(bundleId, pull)
        pull.catch((err: unknown) => { logger.warn('pull for an HTTP client failed', { bundleId, err }) })
      }
      // A pull that fails before the object arrives fails this request too, with its reason.
      await Promise.race([completed, pull.then(async () => { await completed })])
    },
  }
}
