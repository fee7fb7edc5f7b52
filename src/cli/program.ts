import { Command, CommanderError } from 'commander'
import { COMMAND_SPECS, daemonSpec, type CommandSpec } from './commands.js'
import { UsageError } from './usage-error.js'

/**
 * commander checks a command line against COMMAND_SPECS: unknown commands and options are
 * usage errors with commander's "(Did you mean …?)", and each command has its own `--help`.
 * Why commander: the most used and best kept of the three (citty, clipanion), no dependencies,
 * typed, with suggestions, per-command help and an exit override built in; see docs/architecture.md.
 */
export async function buildProgram (withDaemon: boolean): Promise<Command> {
  const program = new Command('shoal')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
  for (const [name, spec] of Object.entries(COMMAND_SPECS)) program.addCommand(commandOf(name, spec))
  if (withDaemon) {
    const { DAEMON_OPTIONS, settingsTable } = await import('../daemon/index.js')
    program.addCommand(commandOf('daemon', daemonSpec(DAEMON_OPTIONS), '\n\nSettings (flag, variable, config-file key; flags win over variables, variables over the file):\n' + settingsTable('text')))
  } else {
    // Named, so a typo suggests it, without loading the daemon to check its options.
    program.addCommand(new Command('daemon').allowUnknownOption().allowExcessArguments().exitOverride().action(() => {}))
  }
  return program
}

function commandOf (name: string, spec: CommandSpec, moreHelp = ''): Command {
  const command = new Command(name)
    .description(spec.summary)
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
    .helpOption(false)
    .action(() => {})
  for (const arg of spec.args) command.argument(arg)
  for (const [long, option] of Object.entries(spec.options)) {
    // Every value option may be repeated (`--ref A --ref B`, the last wins unless `multiple`);
    // never variadic, which would swallow the positional arguments after it.
    if (option.type === 'string') command.option(`--${long} <${option.value}>`, option.description, (value: string, previous: string[] = []) => [...previous, value])
    else command.option(`--${long}`, option.description)
  }
  const examples = spec.examples.map(e => `  ${e}`).join('\n')
  const global = '\nGlobal options: --data DIR, --api ADDR, --api-token-file FILE, --json (errors too, as {"error":{"code","message"}}), --help, --version'
  command.addHelpText('after', `\nExamples:\n${examples}\n${global}${moreHelp}`)
  return command
}

/** The help of one command, or undefined when there is no such command. */
export async function commandHelp (name: string): Promise<string | undefined> {
  const command = (await buildProgram(name === 'daemon')).commands.find(c => c.name() === name)
  if (command === undefined) return undefined
  return command.helpInformation().replace(/^Usage: shoal /, 'Usage: shoal [global options] ') + helpAfter(command)
}

function helpAfter (command: Command): string {
  // helpInformation() leaves out addHelpText(); render it the way outputHelp() would.
  let after = ''
  command.configureOutput({ writeOut: s => { after += s }, writeErr: () => {} })
  command.outputHelp()
  return after.slice(command.helpInformation().length)
}

/** Checks `COMMAND ARGS…` (global options already taken out); throws a UsageError with commander's words. */
export async function checkCommandLine (command: string, rest: string[]): Promise<void> {
  const program = await buildProgram(command === 'daemon')
  try {
    program.parse([command, ...rest], { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) throw new UsageError(err.message.replace(/^error: /, '').replace(/\n/g, ' ').trim().replace(/\.$/, ''))
    throw err
  }
}
