import { collectGarbage, type GcResult } from '../store/index.js'
import { printJson, printLine, viaDaemonOrStore, type Command } from './context.js'
import { requestJson } from './daemon-client.js'

type RmResult = GcResult & { removed: string[] }
import { EXIT_OK } from './exit-codes.js'
import { formatBytes } from './progress.js'
import { UsageError } from './usage-error.js'
import { COMMAND_SPECS, parseCommand } from './commands.js'

/** `shoal rm ID|REF...`: drops bundles and frees the objects no other bundle uses. */
export const rm: Command = async (args, context) => {
  const { positionals } = parseCommand(COMMAND_SPECS.rm, args)
  if (positionals.length === 0) throw new UsageError('rm takes at least one ID or REF')
  const result = await viaDaemonOrStore(context,
    async api => await requestJson<RmResult>(api, 'POST', '/api/v1/rm', { refs: positionals }, context.signal),
    async store => {
      const ids = new Set<string>()
      for (const idOrRef of positionals) ids.add(await store.resolve(idOrRef))
      for (const id of ids) await store.removeBundleRecord(id)
      return { removed: [...ids], ...await collectGarbage(store, { signal: context.signal }) }
    })
  if (context.json) printJson(context, result)
  else printLine(context, `removed ${result.removed.length} bundle(s), freed ${formatBytes(result.freedBytes)} in ${result.removedObjects} object(s)`)
  return EXIT_OK
}
