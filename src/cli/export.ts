import { parseArgs } from 'node:util'
import { exportArchive, exportTree } from '../store/index.js'
import { printJson, withStore, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { UsageError } from './usage-error.js'

/** `shoal export ID|REF DEST`: a directory, or an oci-archive when DEST ends in `.tar`. */
export const exportCommand: Command = async (args, context) => {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} })
  const [idOrRef, dest] = positionals
  if (idOrRef === undefined || dest === undefined || positionals.length > 2) throw new UsageError('export takes ID|REF and DEST')
  const id = await withStore(context, async store => {
    const bundleId = await store.resolve(idOrRef)
    if (dest.endsWith('.tar')) await exportArchive(store, bundleId, dest, { signal: context.signal })
    else await exportTree(store, bundleId, dest, { signal: context.signal })
    return bundleId
  }, { create: false })
  if (context.json) printJson(context, { id, dest })
  return EXIT_OK
}
