import { parseSelector, selectorMatches, type Selector } from '../labels/index.js'
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
  /** N: nodes (of the M) that hold it whole. */
  complete: number
  partial: number
  /** M: the nodes a preheat of it selects, or every node known when none does. */
  total: number
  /** The preheat's selector when one names this bundle ('' selects every node). */
  preheat?: { selector: string, ref?: string }
}

/** A preheat this node holds, as the view needs it (the control API's PreheatStatus has more). */
export interface FleetPreheat { bundleId: string, selector: string, ref?: string, state: string }

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
 * A node's own bundles as its status lists them: whole ones and ones arriving (with how far, in
 * permille), pinned first, then the most recently used (the status carries only the first few).
 */
export function ownBundles (bundles: BundleSummary[]): Pick<FleetNodeInfo, 'complete' | 'completeCount' | 'partial' | 'partialCount'> {
  const order = (a: BundleSummary, b: BundleSummary): number => Number(b.pinned) - Number(a.pinned) || b.lastUsedAt - a.lastUsedAt
  const complete = bundles.filter(b => b.complete).sort(order)
  const partial = bundles.filter(b => !b.complete).sort(order)
  return {
    complete: complete.map(b => b.id),
    completeCount: complete.length,
    partial: partial.map(b => ({ id: b.id, permille: b.bytes === 0 ? 0 : Math.floor(b.presentBytes * 1000 / b.bytes) })),
    partialCount: partial.length,
  }
}

/**
 * The fleet view from the nodes' statuses: per bundle, how many nodes hold it whole. This node's
 * own row takes its bundles from `local`, the store as it is now (ownBundles), not from its last
 * signed status: after `shoal rm` or a pull that completed, `shoal fleet` showed the old count
 * until the next heartbeat (up to 30 s). A node
 * lists at most 32 bundles, so a bundle held by nodes that hold very many others is undercounted
 * (docs/architecture.md, "Fleet view").
 */
export function summarizeFleet (signed: FleetNodeInfo[], local: BundleSummary[], options: { maxNodes?: number, maxBundles?: number, preheats?: FleetPreheat[] } = {}): FleetResponse {
  const own = ownBundles(local)
  const nodes = signed.map(node => node.self ? { ...node, ...own } : node)
  // A preheat's spread counts only the nodes its selector picks (M), and N among those.
  const selectors = new Map<string, { selector: Selector, text: string, ref?: string }>()
  for (const p of options.preheats ?? []) {
    if (p.state === 'cancelled') continue
    try {
      selectors.set(p.bundleId, { selector: parseSelector(p.selector), text: p.selector, ref: p.ref })
    } catch {
      // A record's selector was checked when it was signed and accepted; one that no longer parses counts every node.
    }
  }
  const selected = (id: string, node: FleetNodeInfo): boolean => {
    const s = selectors.get(id)
    return s === undefined || selectorMatches(s.selector, node.labels)
  }
  const complete = new Map<string, number>()
  const partial = new Map<string, number>()
  for (const node of nodes) {
    for (const id of node.complete) if (selected(id, node)) complete.set(id, (complete.get(id) ?? 0) + 1)
    for (const p of node.partial) if (selected(p.id, node)) partial.set(p.id, (partial.get(p.id) ?? 0) + 1)
  }
  const localById = new Map(local.map(b => [b.id, b]))
  const ids = new Set([...complete.keys(), ...partial.keys(), ...selectors.keys()])
  const wanted = (id: string): number => Number(selectors.has(id) || (localById.get(id)?.pinned ?? false))
  const ranked = [...ids].sort((a, b) =>
    wanted(b) - wanted(a) ||
    (complete.get(b) ?? 0) + (partial.get(b) ?? 0) - (complete.get(a) ?? 0) - (partial.get(a) ?? 0) ||
    a.localeCompare(b))
  const bundles = ranked.slice(0, options.maxBundles ?? FLEET_TOP_BUNDLES).map(id => ({
    id,
    refs: localById.get(id)?.refs ?? [],
    pinned: localById.get(id)?.pinned ?? false,
    complete: complete.get(id) ?? 0,
    partial: partial.get(id) ?? 0,
    total: selectors.has(id) ? nodes.filter(n => selected(id, n)).length : nodes.length,
    ...(selectors.has(id) ? { preheat: { selector: selectors.get(id)?.text ?? '', ...(selectors.get(id)?.ref !== undefined ? { ref: selectors.get(id)?.ref } : {}) } } : {}),
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
