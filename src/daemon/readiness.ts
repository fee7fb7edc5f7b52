import { open, unlink } from 'node:fs/promises'
import type { ReadinessReport } from '../http/index.js'
import type { Store } from '../store/index.js'
import { abortAfter } from '../wait/index.js'

/** A store that cannot take a small write this fast is as good as unwritable for a pull. */
const STORE_PROBE_TIMEOUT_MS = 5_000

export interface ReadinessComponents {
  store: Store
  swarm: { peers: () => Array<{ connected: boolean, banned: boolean }> }
}

export interface ReadinessInit {
  gateway: boolean
  bootstrap: string[]
}

/**
 * `/readyz` (docs/architecture.md "Health"): ready when the store takes a write (a disk that
 * is full or read-only makes every pull fail) and the swarm can fetch — it has a peer, or it
 * is a gateway, which serves without one. Bootstrap addresses were checked at start (a bad
 * one stops the daemon), so they are reported, not tested again. Each check says why.
 */
export function createReadiness (components: ReadinessComponents, init: ReadinessInit): () => Promise<ReadinessReport> {
  let probes = 0
  return async () => {
    const checks: ReadinessReport['checks'] = []
    const probe = components.store.stagingPath('readyz', `${process.pid}-${probes++}`)
    try {
      await writeProbe(probe)
      checks.push({ name: 'store', ok: true, detail: 'writable' })
    } catch (err) {
      checks.push({ name: 'store', ok: false, detail: `not writable: ${(err as Error).message}` })
    } finally {
      await unlink(probe).catch(() => {})
    }
    // The swarm's list keeps every peer it has moved bytes with or banned, connected or not:
    // an edge whose gateway and neighbours are gone has none to fetch from, however long
    // that list is (shoal_swarm_peers_connected counts the same way).
    const peers = components.swarm.peers().filter(p => p.connected && !p.banned).length
    if (init.gateway) checks.push({ name: 'swarm', ok: true, detail: `gateway, ${peers} peer(s)` })
    else if (peers > 0) checks.push({ name: 'swarm', ok: true, detail: `${peers} peer(s)` })
    else checks.push({ name: 'swarm', ok: false, detail: init.bootstrap.length > 0 ? `no peer connected; bootstrap ${init.bootstrap.join(', ')} not reached yet` : 'no peer connected and no --bootstrap address (mDNS only)' })
    checks.push({ name: 'bootstrap', ok: true, detail: `${init.bootstrap.length} address(es), each with a /p2p/ peer ID` })
    return { ready: checks.every(c => c.ok), checks }
  }
}

async function writeProbe (path: string): Promise<void> {
  const signal = abortAfter(STORE_PROBE_TIMEOUT_MS)
  const handle = await open(path, 'wx', 0o600)
  try {
    await handle.writeFile(Buffer.alloc(4096), { signal })
    await handle.datasync()
  } finally {
    await handle.close()
  }
}
