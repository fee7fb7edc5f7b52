import type { PullEvent } from '../daemon/index.js'
import { receiveBundle } from './bundle-transfer.js'
import { printJson, printLine, type Command } from './context.js'
import { DaemonError, findDaemon, noDaemonMessage, requestLines } from './daemon-client.js'
import { EXIT_OK } from './exit-codes.js'
import { ProgressBar } from './progress.js'
import { pullFromStore } from './store-commands.js'
import { UsageError } from './usage-error.js'
import { COMMAND_SPECS, parseCommand } from './commands.js'

/**
 * `shoal pull ID|REF [DIR]`: fetch through the swarm with progress; check out to DIR if given.
 * `shoal pull --store STORE --id ID [DIR]`: from a file:// or bucket store into the data dir.
 */
export const pull: Command = async (args, context) => {
  const { values, positionals } = parseCommand(COMMAND_SPECS.pull, args)
  if (values.store !== undefined) {
    const id = values.id ?? positionals[0]
    const dir = values.id !== undefined ? positionals[0] : positionals[1]
    if (id === undefined || positionals.length > (values.id !== undefined ? 1 : 2)) throw new UsageError('pull --store STORE takes --id ID (or ID) and an optional DIR')
    return await pullFromStore(values.store, id, dir, context)
  }
  const [ref, dir] = positionals
  if (ref === undefined || positionals.length > 2) throw new UsageError('pull takes ID|REF and an optional DIR')
  const api = await findDaemon(context)
  if (api === undefined) throw new UsageError(noDaemonMessage('pull', context.dataDir))
  const bar = new ProgressBar(context.stderr, 'pull', undefined, !context.json)
  let done: Extract<PullEvent, { type: 'done' }> | undefined
  let id = ref
  let lastSearch = ''
  for await (const event of requestLines<PullEvent>(api, '/api/v1/pull', { ref }, context.signal)) {
    if (event.type === 'resolved') id = event.id
    else if (event.type === 'searching') {
      // Shown even in a pipe: it explains a wait, and it goes to stderr.
      const line = `shoal: looking for bundle ${id}: asked ${event.peersAsked} peer(s), ${event.providerLookups} DHT lookup(s), ${event.providersFound} holder(s) found`
      if (!context.json && line !== lastSearch) context.stderr.write(line + '\n')
      lastSearch = line
    } else if (event.type === 'progress') bar.update(event.presentBytes, `${event.peers} peer(s)`, event.totalBytes)
    else if (event.type === 'error') throw new DaemonError(event.code, event.message, 0)
    else if (event.type === 'done') done = event
  }
  bar.finish()
  if (done === undefined) throw new DaemonError('PULL_INTERRUPTED', 'the daemon closed the pull before it finished; run the same pull again to resume', 0)
  // The daemon writes nowhere it is told: it streams the bundle, and this process checks it out.
  if (dir !== undefined) await receiveBundle(api, done.id, dir, context.signal)
  if (context.json) printJson(context, done)
  else printLine(context, done.id)
  return EXIT_OK
}
