import { SOLE_COPY_HOLD_MS } from './constants.js'

/**
 * Sole copies first, an edge's half of "each chunk leaves the gateway about once": how much
 * longer an edge holds back an asker's stream whose next chunk another edge neighbour holds
 * too (`edgeHolders` > 0), asked at `askedAt`, while another asker's stream has a chunk only
 * this edge holds queued; 0 sends it now. The chunk server asks only when such a stream
 * exists. Each stream already answers rarest first; across streams they took turns, so a chunk
 * the gateway had just sent this edge waited behind other askers' chunks that their other
 * neighbours could send as well, and askers that found no edge copy went back to the gateway
 * for a second one (scripts/simulate.ts, docs/architecture.md "Edges send the rarest first").
 * Pure: the chunk server (chunk-protocol.ts) and the simulator run it.
 */
export function soleCopyWaitMs (edgeHolders: number, askedAt: number, now: number, holdMs: number = SOLE_COPY_HOLD_MS): number {
  if (holdMs <= 0 || edgeHolders === 0) return 0
  return Math.max(0, askedAt + holdMs - now)
}
