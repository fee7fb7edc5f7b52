import { isBucketUrl } from '../bucket/index.js'
import { openEndpoint, syncSnapshot, type OpenedEndpoint } from '../store/index.js'
import { printJson, printLine, type Command, type CommandContext } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { formatBytes, ProgressBar } from './progress.js'
import { UsageError } from './usage-error.js'
import { COMMAND_SPECS, parseCommand } from './commands.js'

/**
 * `shoal sync --id ID --from STORE --to STORE`: a STORE is a shoal data directory, `file://PATH`
 * in snapdir's file-store layout, or `s3://BUCKET/PREFIX` / `gs://BUCKET/PREFIX` in
 * snapdir-s3-store's layout.
 */
export const sync: Command = async (args, context) => {
  const { values } = parseCommand(COMMAND_SPECS.sync, args)
  if (values.id === undefined || values.from === undefined || values.to === undefined) throw new UsageError('sync needs --id, --from and --to')
  const { id, from, to } = values
  checkSnapshotName(id, from.startsWith('file://') || isBucketUrl(from))
  // The source must exist; the destination is created by the first sync into it.
  await withEndpoints(context, [from, to], async ([source, destination]) => {
    const bar = new ProgressBar(context.stderr, 'sync', undefined, !context.json)
    const result = await syncSnapshot(id, source!.endpoint, destination!.endpoint, { signal: context.signal, onProgress: bytes => { bar.update(bytes) } })
    bar.finish()
    if (context.json) printJson(context, result)
    else {
      const repaired = result.repairedObjects > 0 ? ` (${result.repairedObjects} of them replacing a damaged copy)` : ''
      const resumed = result.resumedBytes > 0 ? ` (${formatBytes(result.resumedBytes)} of it sent by an earlier run)` : ''
      printLine(context, `${result.id}: copied ${result.copiedObjects} object(s), ${formatBytes(result.copiedBytes)}${repaired}${resumed}; ${result.skippedObjects} already there`)
    }
  }, [false, true])
  return EXIT_OK
}

/**
 * Opens each store named (closing what opened if a later one fails), runs `task`, closes them.
 * `create[i]` false refuses a data dir that does not exist yet (a source, or a store to read).
 */
export async function withEndpoints<T> (context: CommandContext, specs: string[], task: (opened: OpenedEndpoint[]) => Promise<T>, create: boolean[] = []): Promise<T> {
  const opened: OpenedEndpoint[] = []
  try {
    for (const [i, spec] of specs.entries()) opened.push(await openEndpoint(spec, { env: process.env, signal: context.signal, create: create[i] ?? false }))
    return await task(opened)
  } finally {
    for (const one of opened) await one.close()
  }
}

const HEX_ID = /^[0-9a-f]{8,64}$/
const SNAPDIR_ID = /^[0-9a-f]{64}$/

/**
 * `--id` names a snapshot, never a path: a file or bucket store knows only full snapdir IDs, a
 * shoal store also a ref. Anything that could walk out of a store (`../../etc/passwd`) is
 * refused before any store is opened.
 */
function checkSnapshotName (id: string, fromSnapdirStore: boolean): void {
  if (fromSnapdirStore ? SNAPDIR_ID.test(id) : HEX_ID.test(id)) return
  if (fromSnapdirStore) throw new UsageError(`--id ${JSON.stringify(id)} is not a snapdir ID (64 lowercase hex digits), which is how a file:// or bucket store names its snapshots`)
  const unsafe = id.startsWith('/') || id.startsWith('.') || /\s/.test(id) || id.split('/').some(part => part === '..' || part === '.' || part === '')
  if (unsafe) throw new UsageError(`--id ${JSON.stringify(id)} is neither an ID (hex) nor a ref (such as registry.example.com/app:1.0)`)
}
