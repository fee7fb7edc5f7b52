import { formatManifest, snapdirId, walkTree } from '../manifest/index.js'
import { printJson, warn, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { UsageError } from './usage-error.js'
import { COMMAND_SPECS, parseCommand } from './commands.js'

/** `shoal manifest DIR`: the snapdir manifest, byte for byte as snapdir prints it. */
export const manifest: Command = async (args, context) => {
  const { positionals } = parseCommand(COMMAND_SPECS.manifest, args)
  const dir = positionals[0]
  if (dir === undefined || positionals.length > 1) throw new UsageError('manifest takes one DIR')
  const entries = await walkTree(dir, { signal: context.signal, onWarning: warn(context) })
  const text = formatManifest(entries)
  // --json: the entries as objects and the ID, for scripts that would otherwise split lines.
  if (context.json) printJson(context, { snapdirId: snapdirId(text), entries: entries.map(({ type, perms, checksum, size, path }) => ({ type, perms, checksum, size, path })) })
  else context.stdout.write(text)
  return EXIT_OK
}
