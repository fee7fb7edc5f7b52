import { formatManifest, snapdirId, walkTree } from '../manifest/index.js'
import { bundleOfTree } from '../store/index.js'
import { printJson, printLine, warn, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { UsageError } from './usage-error.js'
import { COMMAND_SPECS, parseCommand } from './commands.js'

/** `shoal id DIR` (the snapdir ID) or `shoal id --bundle DIR` (the bundle ID a push would give). */
export const id: Command = async (args, context) => {
  const { values, positionals } = parseCommand(COMMAND_SPECS.id, args)
  const dir = positionals[0]
  if (dir === undefined || positionals.length > 1) throw new UsageError('id takes one DIR')
  if (values.bundle === true) {
    const { bundleId, bundle } = await bundleOfTree(dir, { signal: context.signal, onWarning: warn(context) })
    if (context.json) printJson(context, { bundleId, snapdirId: snapdirId(bundle.manifestText) })
    else printLine(context, bundleId)
    return EXIT_OK
  }
  const result = snapdirId(formatManifest(await walkTree(dir, { signal: context.signal, onWarning: warn(context) })))
  if (context.json) printJson(context, { snapdirId: result })
  else printLine(context, result)
  return EXIT_OK
}
