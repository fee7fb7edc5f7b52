import { parseArgs } from 'node:util'
import { collectGarbage } from '../store/index.js'
import { printJson, printLine, withStore, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { formatBytes } from './progress.js'
import { UsageError } from './usage-error.js'

/** `shoal rm ID|REF...`: drops bundles and frees the objects no other bundle uses. */
export const rm: Command = async (args, context) => {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} })
  if (positionals.length === 0) throw new UsageError('rm takes at least one ID or REF')
  const { removed, gc } = await withStore(context, async store => {
    const ids: string[] = []
    for (const idOrRef of positionals) ids.push(await store.resolve(idOrRef))
    for (const id of new Set(ids)) await store.removeBundleRecord(id)
    return { removed: [...new Set(ids)], gc: await collectGarbage(store, { signal: context.signal }) }
  })
  if (context.json) printJson(context, { removed, ...gc })
  else printLine(context, `removed ${removed.length} bundle(s), freed ${formatBytes(gc.freedBytes)} in ${gc.removedObjects} object(s)`)
  return EXIT_OK
}
