import type { Store } from '../store/index.js'
import { withReadChunk, type SwarmStore } from '../swarm/index.js'

/**
 * For fault tests only (`SHOAL_TEST_CORRUPT_CHUNKS=1`, used by scripts/fleet.ts --faults
 * byzantine): the swarm serves every chunk with one byte flipped, speaking the real protocol,
 * so the fleet's verification and bans are tested against a real lying daemon. The node's
 * own store stays correct.
 */
export function corruptingStore (store: Store): SwarmStore {
  return withReadChunk(store, async (hash, index, options) => {
    const bytes = Buffer.from(await store.readChunk(hash, index, options))
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0x5a
    return bytes
  })
}
