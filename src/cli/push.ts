import { pushPath } from '../store/index.js'
import { printJson, printLine, warn, withStore, type Command } from './context.js'
import { pushThroughDaemon } from './bundle-transfer.js'
import { findDaemon } from './daemon-client.js'
import { EXIT_OK } from './exit-codes.js'
import { ProgressBar } from './progress.js'
import { pushToStore } from './store-commands.js'
import { treeSize } from './tree-size.js'
import { UsageError } from './usage-error.js'
import { COMMAND_SPECS, parseCommand } from './commands.js'

interface PushOutput { id: string, snapdirId: string, refs: Array<{ ref: string, manifestDigest?: string }>, newObjects: number, newBytes: number }

/**
 * `shoal push PATH [--ref [LAYOUTREF=]NAME]...`: through the daemon (which announces it) when one runs.
 * `shoal push --store STORE DIR`: to a file:// or bucket store, as snapdir's push does.
 */
export const push: Command = async (args, context) => {
  const { values, positionals } = parseCommand(COMMAND_SPECS.push, args)
  const path = positionals[0]
  if (path === undefined || positionals.length > 1) throw new UsageError('push takes one PATH (a directory or an image archive)')
  if (values.store !== undefined) {
    if (values.ref !== undefined) throw new UsageError('push --store takes no --ref: a store holds snapshots, not refs')
    return await pushToStore(path, values.store, context)
  }
  const refs = values.ref ?? []
  const api = await findDaemon(context)
  let output: PushOutput
  if (api !== undefined) {
    output = await pushThroughDaemon(api, path, refs, context.signal)
  } else {
    const bar = new ProgressBar(context.stderr, 'push', context.stderr.isTTY === true ? await treeSize(path) : undefined, !context.json)
    const result = await withStore(context, async store => await pushPath(store, path, {
      refs, signal: context.signal, onProgress: p => { bar.update(p.bytes, `${p.files} files`) }, onWarning: warn(context),
    }))
    bar.finish()
    output = { id: result.bundleId, snapdirId: result.snapdirId, refs: result.refs.map(r => ({ ref: r.ref, manifestDigest: r.manifestDigest })), newObjects: result.newObjects, newBytes: result.newBytes }
  }
  if (context.json) printJson(context, output)
  else if (context.stdout.isTTY === true) {
    // A person sees both names; a pipe (`id=$(shoal push DIR)`) gets the bundle ID alone.
    printLine(context, `bundle ID   ${output.id}`)
    printLine(context, `snapdir ID  ${output.snapdirId}`)
  } else printLine(context, output.id)
  return EXIT_OK
}
