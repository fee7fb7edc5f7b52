import { verifyStore, type VerifyReport } from '../store/index.js'
import { printJson, printLine, viaDaemonOrStore, type Command } from './context.js'
import { requestJson } from './daemon-client.js'
import { EXIT_FAILURE, EXIT_OK } from './exit-codes.js'
import { ProgressBar } from './progress.js'
import { verifyInStore } from './store-commands.js'
import { COMMAND_SPECS, parseCommand } from './commands.js'

/**
 * `shoal verify [ID|REF]`: re-hashes everything; exit 1 names each bad object and what it breaks.
 * `shoal verify --store STORE [--id ID]`: the same for a file:// or bucket store.
 */
export const verify: Command = async (args, context) => {
  const { values, positionals } = parseCommand(COMMAND_SPECS.verify, args)
  if (values.store !== undefined) return await verifyInStore(values.store, values.id ?? positionals[0], context)
  const bar = new ProgressBar(context.stderr, 'verify', undefined, !context.json)
  const report = await viaDaemonOrStore(context,
    async api => await requestJson<VerifyReport>(api, 'POST', '/api/v1/verify', { ref: positionals[0] }, context.signal),
    async store => {
      const bundleId = positionals[0] !== undefined ? await store.resolve(positionals[0]) : undefined
      return await verifyStore(store, { bundleId, signal: context.signal, onProgress: bytes => { bar.update(bytes) } })
    })
  bar.finish()
  if (context.json) {
    printJson(context, report)
  } else {
    for (const bad of report.bad) {
      printLine(context, `BAD ${bad.object}: ${bad.why}`)
      for (const use of bad.usedBy) printLine(context, `  breaks bundle ${use.bundleId} at ${use.paths.join(', ')}`)
    }
    for (const missing of report.missing) printLine(context, `MISSING ${missing.object} (bundle ${missing.bundleId})`)
    printLine(context, `${report.ok ? 'ok' : 'FAILED'}: ${report.bundles} bundle(s), ${report.objectsChecked} object(s), ${report.bytesChecked} bytes checked, ${report.bad.length} bad, ${report.missing.length} missing`)
  }
  return report.ok ? EXIT_OK : EXIT_FAILURE
}
