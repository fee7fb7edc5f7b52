import type { NodeLabels } from '../labels/index.js'
import { diskFreeBytes, type Store } from '../store/index.js'
import type { StatusSource, Swarm } from '../swarm/index.js'

/**
 * What this node tells the fleet about itself each heartbeat (status-protocol.ts): labels,
 * version, the bundles it holds and is pulling, free disk and transfer rates. Pinned bundles
 * are listed first, then the most recently used, since the status carries only the first few.
 */
export function nodeStatusSource (components: { store: Store, swarm: () => Swarm | undefined }, init: { labels: NodeLabels, version: string, dataDir: string }): StatusSource {
  let last: { at: number, up: number, down: number } | undefined
  return async () => {
    const bundles = await components.store.listBundles()
    const order = (a: { pinned: boolean, lastUsedAt: number }, b: { pinned: boolean, lastUsedAt: number }): number =>
      Number(b.pinned) - Number(a.pinned) || b.lastUsedAt - a.lastUsedAt
    const complete = bundles.filter(b => b.complete).sort(order)
    const partial = bundles.filter(b => !b.complete).sort(order)
    const stats = components.swarm()?.stats()
    const now = Date.now()
    let uploadRate = 0
    let downloadRate = 0
    if (stats !== undefined) {
      if (last !== undefined && now > last.at) {
        uploadRate = (stats.bytesUploaded - last.up) * 1000 / (now - last.at)
        downloadRate = (stats.bytesDownloaded - last.down) * 1000 / (now - last.at)
      }
      last = { at: now, up: stats.bytesUploaded, down: stats.bytesDownloaded }
    }
    return {
      version: init.version,
      labels: { ...init.labels },
      complete: complete.map(b => b.id),
      completeCount: complete.length,
      partial: partial.map(b => ({ id: b.id, permille: b.bytes === 0 ? 0 : Math.floor(b.presentBytes * 1000 / b.bytes) })),
      partialCount: partial.length,
      freeBytes: await freeBytes(init.dataDir),
      uploadRate,
      downloadRate,
    }
  }
}

/** 0 reads as "unknown" in the view: for a failed read, and for a disk that reports no size. */
async function freeBytes (dir: string): Promise<number> {
  try {
    const free = await diskFreeBytes(dir)
    return Number.isFinite(free) ? free : 0
  } catch {
    // A status without the figure beats no status.
    return 0
  }
}
