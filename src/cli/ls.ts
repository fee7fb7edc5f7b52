import { formatBytes } from './progress.js'
import { printJson, printLine, withStore, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'

export const ls: Command = async (_args, context) => {
  const bundles = await withStore(context, async store => await store.listBundles())
  if (context.json) {
    printJson(context, bundles)
    return EXIT_OK
  }
  for (const b of bundles) {
    const state = b.complete ? 'complete' : `${((b.presentBytes / Math.max(b.bytes, 1)) * 100).toFixed(0)}%`
    printLine(context, `${b.id}  ${formatBytes(b.bytes).padStart(10)}  ${state.padEnd(8)}${b.pinned ? ' pinned' : ''}  ${b.refs.join(' ')}`)
  }
  return EXIT_OK
}
