import { parseArgs } from 'node:util'
import { formatManifest, snapdirId, walkTree } from '../manifest/index.js'
import { bundleOfTree } from '../store/index.js'
import { printLine, warn, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { UsageError } from './usage-error.js'

/** `shoal id DIR` (the snapdir ID) or `shoal id --bundle DIR` (the bundle ID a push would give). */
export const id: Command = async (args, context) => {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { bundle: { type: 'boolean' } } })
  const dir = positionals[0]
  if (dir === undefined || positionals.length > 1) throw new UsageError('id takes one DIR')
  const result = values.bundle === true
    ? (await bundleOfTree(dir, { signal: context.signal, onWarning: warn(context) })).bundleId
    : snapdirId(formatManifest(await walkTree(dir, { signal: context.signal, onWarning: warn(context) })))
  printLine(context, result)
  return EXIT_OK
}
