import type { RefRevision } from '../store/index.js'
import { printJson, printLine, viaDaemonOrStore, type Command } from './context.js'
import { requestJson } from './daemon-client.js'
import { EXIT_OK } from './exit-codes.js'
import { revisionsInStore } from './store-commands.js'
import { COMMAND_SPECS, parseCommand } from './commands.js'

/**
 * `shoal revisions [REF]`: each ref's history of bundle IDs, oldest first.
 * `shoal revisions --store STORE`: the snapshots a file:// or bucket store holds, oldest first.
 */
export const revisions: Command = async (args, context) => {
  const { values, positionals } = parseCommand(COMMAND_SPECS.revisions, args)
  if (values.store !== undefined) return await revisionsInStore(values.store, context)
  const ref = positionals[0]
  const history = await viaDaemonOrStore(context,
    async api => await requestJson<RefRevision[]>(api, 'GET', `/api/v1/revisions${ref !== undefined ? `?ref=${encodeURIComponent(ref)}` : ''}`, undefined, context.signal),
    async store => await store.revisions(ref))
  if (context.json) {
    printJson(context, history)
    return EXIT_OK
  }
  for (const r of history) printLine(context, `${new Date(r.at).toISOString()}  ${r.bundleId}  ${r.ref}${r.manifestDigest !== undefined ? `  ${r.manifestDigest}` : ''}`)
  return EXIT_OK
}
