import { collectGarbage, type GcResult } from '../store/index.js'
import { printJson, printLine, viaDaemonOrStore, type Command } from './context.js'
import { requestJson } from './daemon-client.js'
import { EXIT_OK } from './exit-codes.js'
import { formatBytes } from './progress.js'

export const gc: Command = async (_args, context) => {
  const result = await viaDaemonOrStore(context,
    async api => await requestJson<GcResult>(api, 'POST', '/api/v1/gc', {}, context.signal),
    async store => await collectGarbage(store, { signal: context.signal }))
  if (context.json) printJson(context, result)
  else printLine(context, `freed ${formatBytes(result.freedBytes)} in ${result.removedObjects} object(s), ${result.removedPartials} partial object(s)`)
  return EXIT_OK
}
