import { collectGarbage } from '../store/index.js'
import { printJson, printLine, withStore, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { formatBytes } from './progress.js'

export const gc: Command = async (_args, context) => {
  const result = await withStore(context, async store => await collectGarbage(store, { signal: context.signal }))
  if (context.json) printJson(context, result)
  else printLine(context, `freed ${formatBytes(result.freedBytes)} in ${result.removedObjects} object(s), ${result.removedPartials} partial object(s)`)
  return EXIT_OK
}
