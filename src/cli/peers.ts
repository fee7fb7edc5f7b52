import type { PeerInfo, StatusResponse } from '../daemon/index.js'
import { printJson, printLine, type Command } from './context.js'
import { findDaemon, noDaemonMessage, requestJson, type DaemonApi } from './daemon-client.js'
import { EXIT_OK } from './exit-codes.js'
import { formatBytes } from './progress.js'
import { UsageError } from './usage-error.js'

export async function requireDaemon (context: Parameters<Command>[1]): Promise<DaemonApi> {
  const api = await findDaemon(context)
  if (api === undefined) throw new UsageError(noDaemonMessage('this command', context.dataDir))
  return api
}

export const peers: Command = async (_args, context) => {
  const list = await requestJson<PeerInfo[]>(await requireDaemon(context), 'GET', '/api/v1/peers', undefined, context.signal)
  if (context.json) printJson(context, list)
  else {
    for (const p of list) {
      // A peer that misbehaved says so, with what it was last charged for.
      const score = p.score !== undefined && p.score < 0 ? `  score ${p.score}${p.lastOffence !== undefined ? ` (${p.lastOffence})` : ''}` : ''
      printLine(context, `${p.id}  ↑${formatBytes(p.bytesUploaded)} ↓${formatBytes(p.bytesDownloaded)}${p.gateway ? '  gateway' : ''}${p.connected ? '' : '  disconnected'}${p.banned ? '  BANNED' : ''}${score}  ${p.addresses.join(' ')}`)
    }
  }
  return EXIT_OK
}

export const status: Command = async (_args, context) => {
  const s = await requestJson<StatusResponse>(await requireDaemon(context), 'GET', '/api/v1/status', undefined, context.signal)
  if (context.json) {
    printJson(context, s)
    return EXIT_OK
  }
  printLine(context, `peer ${s.peerId}${s.gateway ? ' (gateway)' : ''}`)
  // Sorted, so the line reads the same on every node and in a diff.
  printLine(context, `  labels ${Object.keys(s.labels).sort().map(k => `${k}=${s.labels[k]}`).join(',')}`)
  for (const a of s.addresses) printLine(context, `  listening on ${a}`)
  // What hosts.toml and a Prometheus scrape point at; /metrics rides on the registry's port without --metrics.
  if (s.serving.registry !== undefined) {
    printLine(context, `  registry mirror on http://${s.serving.registry}`)
    printLine(context, `  metrics on http://${s.serving.metrics ?? s.serving.registry}/metrics`)
  }
  // Connected ones first: the list also keeps peers that left, for their byte totals.
  printLine(context, `${s.peers.filter(p => p.connected && !p.banned).length} peer(s) connected, ${s.peers.length} known; uploaded ${formatBytes(s.stats.bytesUploaded)}, downloaded ${formatBytes(s.stats.bytesDownloaded)}`)
  for (const b of s.bundles) printLine(context, `  ${b.id}  ${b.complete ? 'complete' : `${Math.floor((b.presentBytes / Math.max(b.bytes, 1)) * 100)}%`}  ${b.refs.join(' ')}`)
  return EXIT_OK
}
