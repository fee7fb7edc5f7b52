import { parseArgs } from 'node:util'
import { pushPath } from '../store/index.js'
import { printJson, printLine, withStore, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { ProgressBar } from './progress.js'
import { treeSize } from './tree-size.js'
import { UsageError } from './usage-error.js'

export const push: Command = async (args, context) => {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ref: { type: 'string', multiple: true } } })
  const path = positionals[0]
  if (path === undefined || positionals.length > 1) throw new UsageError('push takes one PATH (a directory or an image archive)')
  const bar = new ProgressBar(context.stderr, 'push', context.stderr.isTTY === true ? await treeSize(path) : undefined, !context.json)
  const result = await withStore(context, async store => await pushPath(store, path, {
    refs: values.ref ?? [],
    signal: context.signal,
    onProgress: p => { bar.update(p.bytes, `${p.files} files`) },
  }))
  bar.finish()
  if (context.json) {
    printJson(context, {
      id: result.bundleId,
      refs: result.refs.map(r => ({ ref: r.ref, manifestDigest: r.manifestDigest })),
      newObjects: result.newObjects,
      newBytes: result.newBytes,
    })
  } else {
    printLine(context, result.bundleId)
  }
  return EXIT_OK
}
