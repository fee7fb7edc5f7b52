import type { BundleSummary } from '../store/index.js'

/** One node as its signed status says (the swarm's FleetNode, as the control API answers it). */
export interface FleetNodeInfo {
  peerId: string
  self: boolean
  /** Silent for more than a few of its own heartbeat periods. */
  stale: boolean
  lastSeenMs: number
  sequence: number
  version: string
  labels: Record<string, string>
  complete: string[]
  completeCount: number
  partial: Array<{ id: string, permille: number }>
  partialCount: number
  freeBytes: number
  uploadRate: number
  downloadRate: number
  intervalMs: number
}

/** How far one bundle has spread: N of M nodes complete. */
export interface FleetBundleSpread {
  id: string
  /** This node's names for it, when it has any. */
  refs: string[]
  pinned: boolean
  complete: number
  partial: number
  /** M: every node known (a preheat's selector narrows this once preheats exist). */
  total: number
}

export interface FleetResponse {
  known: number
  stale: number
  /** Every node when asked for all; the status page gets the first rows only. */
  nodes: FleetNodeInfo[]
  /** Set when `nodes` was cut to the page's row limit. */
  truncated: boolean
  bundles: FleetBundleSpread[]
}

/** Rows the status page's table shows (stale nodes first); `shoal fleet` lists all. */
export const FLEET_PAGE_ROWS = 200
/** Bundles whose spread is shown and counted in metrics: pinned ones here, then the most held. */
export const FLEET_TOP_BUNDLES = 20

/**
 * The fleet view from the nodes' statuses: per bundle, how many nodes hold it whole. A node
 * lists at most 32 bundles, so a bundle held by nodes that hold very many others is undercounted
 * (docs/architecture.md, "Fleet view").
 */
export function summarizeFleet (nodes: FleetNodeInfo[], local: BundleSummary[], options: { maxNodes?: number, maxBundles?: number } = {}): FleetResponse {
  const complete = new Map<string, number>()
  const partial = new Map<string, number>()
  for (const node of nodes) {
    for (const id of node.complete) complete.set(id, (complete.get(id) ?? 0) + 1)
    for (const p of node.partial) partial.set(p.id, (partial.get(p.id) ?? 0) + 1)
  }
  const localById = new Map(local.map(b => [b.id, b]))
  const ids = new Set([...complete.keys(), ...partial.keys()])
  const ranked = [...ids].sort((a, b) =>
    Number(localById.get(b)?.pinned ?? false) - Number(localById.get(a)?.pinned ?? false) ||
    (complete.get(b) ?? 0) + (partial.get(b) ?? 0) - (complete.get(a) ?? 0) - (partial.get(a) ?? 0) ||
    a.localeCompare(b))
  const bundles = ranked.slice(0, options.maxBundles ?? FLEET_TOP_BUNDLES).map(id => ({
    id,
    refs: localById.get(id)?.refs ?? [],
    pinned: localById.get(id)?.pinned ?? false,
    complete: complete.get(id) ?? 0,
    partial: partial.get(id) ?? 0,
    total: nodes.length,
  }))
  const ordered = [...nodes].sort((a, b) => Number(b.stale) - Number(a.stale) || a.peerId.localeCompare(b.peerId))
  const max = options.maxNodes ?? ordered.length
  return {
    known: nodes.length,
    stale: nodes.filter(n => n.stale).length,
    nodes: ordered.slice(0, max),
    truncated: ordered.length > max,
    bundles,
  }
}
