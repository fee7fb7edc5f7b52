import { parseArgs } from 'node:util'
import { FileStore, openStore, syncSnapshot, type Store, type SyncEndpoint } from '../store/index.js'
import { printJson, printLine, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { formatBytes } from './progress.js'
import { UsageError } from './usage-error.js'

/**
 * `shoal sync --id ID --from STORE --to STORE`: a STORE is a shoal data directory or
 * `file://PATH` in snapdir's file-store layout.
 */
export const sync: Command = async (args, context) => {
  const { values } = parseArgs({ args, options: { id: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } } })
  if (values.id === undefined || values.from === undefined || values.to === undefined) throw new UsageError('sync needs --id, --from and --to')
  const opened: Store[] = []
  const endpoint = async (spec: string): Promise<SyncEndpoint> => {
    if (spec.startsWith('file://')) return { kind: 'file', store: new FileStore(spec.slice('file://'.length)) }
    const store = await openStore({ dir: spec })
    opened.push(store)
    return { kind: 'shoal', store }
  }
  try {
    const result = await syncSnapshot(values.id, await endpoint(values.from), await endpoint(values.to), { signal: context.signal })
    if (context.json) printJson(context, result)
    else printLine(context, `${result.id}: copied ${result.copiedObjects} object(s), ${formatBytes(result.copiedBytes)}; ${result.skippedObjects} already there`)
  } finally {
    for (const store of opened) await store.close()
  }
  return EXIT_OK
}
