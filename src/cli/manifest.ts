import { parseArgs } from 'node:util'
import { formatManifest, walkTree } from '../manifest/index.js'
import { warn, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { UsageError } from './usage-error.js'

/** `shoal manifest DIR`: the snapdir manifest, byte for byte as snapdir prints it. */
export const manifest: Command = async (args, context) => {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} })
  const dir = positionals[0]
  if (dir === undefined || positionals.length > 1) throw new UsageError('manifest takes one DIR')
  context.stdout.write(formatManifest(await walkTree(dir, { signal: context.signal, onWarning: warn(context) })))
  return EXIT_OK
}
