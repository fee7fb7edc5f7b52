import { exportArchive, exportTree } from '../store/index.js'
import { receiveBundle } from './bundle-transfer.js'
import { printJson, viaDaemonOrStore, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { UsageError } from './usage-error.js'
import { COMMAND_SPECS, parseCommand } from './commands.js'

/** `shoal export ID|REF DEST`: a directory, or an oci-archive when DEST ends in `.tar`. */
export const exportCommand: Command = async (args, context) => {
  const { positionals } = parseCommand(COMMAND_SPECS.export, args)
  const [idOrRef, dest] = positionals
  if (idOrRef === undefined || dest === undefined || positionals.length > 2) throw new UsageError('export takes ID|REF and DEST')
  // With a daemon running it holds the store: it streams the bundle, and this process writes DEST.
  const id = await viaDaemonOrStore(context, async api => await receiveBundle(api, idOrRef, dest, context.signal), async store => {
    const bundleId = await store.resolve(idOrRef)
    if (dest.endsWith('.tar')) await exportArchive(store, bundleId, dest, { signal: context.signal })
    else await exportTree(store, bundleId, dest, { signal: context.signal })
    return bundleId
  })
  if (context.json) printJson(context, { id, dest })
  return EXIT_OK
}
