import { writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generateSwarmKey } from '../daemon/index.js'
import { printLine, type Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { UsageError } from './usage-error.js'
import { COMMAND_SPECS, parseCommand } from './commands.js'

/** `shoal keygen swarm FILE`: a pre-shared key that closes a fleet to strangers (libp2p pnet). */
export const keygen: Command = async (args, context) => {
  const { positionals } = parseCommand(COMMAND_SPECS.keygen, args)
  const [kind, file] = positionals
  if (kind !== 'swarm' || file === undefined) throw new UsageError('keygen takes `swarm FILE`')
  try {
    // Never over an existing file: that is most likely the fleet's key, and a node given a new
    // one no longer reaches its peers.
    await writeFile(file, generateSwarmKey(), { mode: 0o600, flag: 'wx' })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') throw new UsageError(`${file} already exists and is left as it is (a fleet's key, if it is one, must stay the same on every node); give another FILE, or remove this one first to replace the fleet's key on every node`)
    if (code === 'ENOENT') throw new UsageError(`the directory of ${file} does not exist; create it (mkdir -p ${dirname(file)}) or give another FILE`)
    throw err
  }
  printLine(context, file)
  return EXIT_OK
}
