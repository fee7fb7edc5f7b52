import { parseArgs } from 'node:util'
import { printJson, printLine, withStore, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'

/** `shoal revisions [REF]`: each ref's history of bundle IDs, oldest first. */
export const revisions: Command = async (args, context) => {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} })
  const history = await withStore(context, async store => await store.revisions(positionals[0]))
  if (context.json) {
    printJson(context, history)
    return EXIT_OK
  }
  for (const r of history) printLine(context, `${new Date(r.at).toISOString()}  ${r.bundleId}  ${r.ref}${r.manifestDigest !== undefined ? `  ${r.manifestDigest}` : ''}`)
  return EXIT_OK
}
