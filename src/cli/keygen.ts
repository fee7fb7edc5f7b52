import { writeFile } from 'node:fs/promises'
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
  await writeFile(file, generateSwarmKey(), { mode: 0o600, flag: 'wx' })
  printLine(context, file)
  return EXIT_OK
}
