import type { FleetResponse } from '../daemon/index.js'
import { printJson, printLine, type Command } from './context.js'
import { findDaemon, requestJson } from './daemon-client.js'
import { EXIT_OK } from './exit-codes.js'
import { formatBytes } from './progress.js'
import { UsageError } from './usage-error.js'

/**
 * `shoal fleet`: every node this daemon has heard of through the status gossip — labels,
 * version, what it holds, free disk, when it was last heard of — and per bundle how many
 * nodes hold it whole. Each line is a node's own signed word (docs/architecture.md, "Fleet view").
 */
export const fleet: Command = async (_args, context) => {
  const api = await findDaemon(context)
  if (api === undefined) throw new UsageError('`shoal fleet` asks a running daemon (`shoal daemon`), named by --api or $SHOAL_API')
  const view = await requestJson<FleetResponse>(api, 'GET', '/api/v1/fleet', undefined, context.signal)
  if (context.json) {
    printJson(context, view)
    return EXIT_OK
  }
  printLine(context, `${view.known} node(s), ${view.stale} stale`)
  for (const n of view.nodes) {
    const labels = Object.keys(n.labels).sort().map(k => `${k}=${n.labels[k]}`).join(',')
    const state = n.self ? 'self ' : n.stale ? 'STALE' : 'live '
    const partial = n.partialCount > 0 ? `, ${n.partialCount} arriving` : ''
    printLine(context, `${n.peerId}  ${state}  ${seen(n.lastSeenMs)}  v${n.version}  ${labels}  ${n.completeCount} bundle(s)${partial}  ${formatBytes(n.freeBytes)} free  ↑${formatBytes(n.uploadRate)}/s ↓${formatBytes(n.downloadRate)}/s`)
  }
  for (const b of view.bundles) {
    const preheat = b.preheat !== undefined ? `  preheat of ${b.preheat.selector === '' ? 'every node' : b.preheat.selector}` : ''
    printLine(context, `  ${b.id.slice(0, 16)}…  ${b.complete} of ${b.total} nodes complete${b.partial > 0 ? `, ${b.partial} arriving` : ''}${preheat}  ${b.refs.join(' ')}`)
  }
  return EXIT_OK
}

function seen (ms: number): string {
  if (ms < 1000) return 'now'
  if (ms < 120_000) return `${Math.round(ms / 1000)}s ago`
  return `${Math.round(ms / 60_000)}m ago`
}
