import { formatBytes } from './progress.js'
import type { BundleSummary } from '../store/index.js'
import { printJson, printLine, viaDaemonOrStore, type Command } from './context.js'
import { requestJson } from './daemon-client.js'
import { EXIT_OK } from './exit-codes.js'

export const ls: Command = async (_args, context) => {
  const bundles = await viaDaemonOrStore(context,
    async api => await requestJson<BundleSummary[]>(api, 'GET', '/api/v1/bundles', undefined, context.signal),
    async store => await store.listBundles())
  if (context.json) {
    printJson(context, bundles)
    return EXIT_OK
  }
  if (bundles.length > 0) printLine(context, `${'BUNDLE ID'.padEnd(64)}  ${'SNAPDIR ID'.padEnd(64)}  ${'SIZE'.padStart(10)}  STATE     REFS`)
  for (const b of bundles) {
    const state = b.complete ? 'complete' : `${((b.presentBytes / Math.max(b.bytes, 1)) * 100).toFixed(0)}%`
    printLine(context, `${b.id}  ${b.snapdirId}  ${formatBytes(b.bytes).padStart(10)}  ${state.padEnd(8)}${b.pinned ? ' pinned' : ''}  ${b.refs.join(' ')}`)
  }
  return EXIT_OK
}
