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
  checkSnapshotName(values.id, values.from.startsWith('file://'))
  const opened: Store[] = []
  // The source must exist; the destination is created by the first sync into it.
  const endpoint = async (spec: string, create: boolean): Promise<SyncEndpoint> => {
    if (spec.startsWith('file://')) return { kind: 'file', store: new FileStore(spec.slice('file://'.length)) }
    const store = await openStore({ dir: spec, create })
    opened.push(store)
    return { kind: 'shoal', store }
  }
  try {
    const result = await syncSnapshot(values.id, await endpoint(values.from, false), await endpoint(values.to, true), { signal: context.signal })
    if (context.json) printJson(context, result)
    else {
      const repaired = result.repairedObjects > 0 ? ` (${result.repairedObjects} of them replacing a damaged copy)` : ''
      printLine(context, `${result.id}: copied ${result.copiedObjects} object(s), ${formatBytes(result.copiedBytes)}${repaired}; ${result.skippedObjects} already there`)
    }
  } finally {
    for (const store of opened) await store.close()
  }
  return EXIT_OK
}

const HEX_ID = /^[0-9a-f]{8,64}$/
const SNAPDIR_ID = /^[0-9a-f]{64}$/

/**
 * `--id` names a snapshot, never a path: a file store knows only full snapdir IDs, a shoal
 * store also a ref. Anything that could walk out of a store (`../../etc/passwd`) is refused
 * before any store is opened.
 */
function checkSnapshotName (id: string, fromFileStore: boolean): void {
  if (fromFileStore ? SNAPDIR_ID.test(id) : HEX_ID.test(id)) return
  if (fromFileStore) throw new UsageError(`--id ${JSON.stringify(id)} is not a snapdir ID (64 lowercase hex digits), which is how a file:// store names its snapshots`)
  const unsafe = id.startsWith('/') || id.startsWith('.') || /\s/.test(id) || id.split('/').some(part => part === '..' || part === '.' || part === '')
  if (unsafe) throw new UsageError(`--id ${JSON.stringify(id)} is neither an ID (hex) nor a ref (such as registry.example.com/app:1.0)`)
}
