import { ownBundles } from '../http/index.js'
import type { NodeLabels } from '../labels/index.js'
import { diskFreeBytes, type Store } from '../store/index.js'
import type { StatusSource, Swarm } from '../swarm/index.js'

/**
 * What this node tells the fleet about itself each heartbeat (status-protocol.ts): labels,
 * version, the bundles it holds and is pulling (ownBundles: the fleet view's own row lists them
 * the same way), free disk and transfer rates.
 */
export function nodeStatusSource (components: { store: Store, swarm: () => Swarm | undefined }, init: { labels: NodeLabels, version: string, dataDir: string }): StatusSource {
  let last: { at: number, up: number, down: number } | undefined
  return async () => {
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
      ...ownBundles(await components.store.listBundles()),
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
