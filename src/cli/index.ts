import { defaultDataDir, type Command, type CommandContext } from './context.js'
import { describeError } from '../errors/index.js'
import { envOf, settingOf } from '../settings/index.js'
import { EXIT_OK, EXIT_USAGE } from './exit-codes.js'
import { HELP } from './help.js'
import { checkCommandLine, commandHelp } from './program.js'
import { packageVersion } from './version.js'
import { UsageError } from './usage-error.js'

/** Loaded on demand: `shoal manifest` should not pay for loading libp2p. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  push: async () => (await import('./push.js')).push,
  export: async () => (await import('./export.js')).exportCommand,
  verify: async () => (await import('./verify.js')).verify,
  ls: async () => (await import('./ls.js')).ls,
  rm: async () => (await import('./rm.js')).rm,
  gc: async () => (await import('./gc.js')).gc,
  revisions: async () => (await import('./revisions.js')).revisions,
  manifest: async () => (await import('./manifest.js')).manifest,
  id: async () => (await import('./id.js')).id,
  sync: async () => (await import('./sync.js')).sync,
  daemon: async () => (await import('./daemon.js')).daemon,
  pull: async () => (await import('./pull.js')).pull,
  peers: async () => (await import('./peers.js')).peers,
  status: async () => (await import('./peers.js')).status,
  fleet: async () => (await import('./fleet.js')).fleet,
  keygen: async () => (await import('./keygen.js')).keygen,
  preheat: async () => (await import('./preheat.js')).preheat,
  unpin: async () => (await import('./preheat.js')).unpin,
}

/** Runs one command line and returns the exit code; only bin/shoal.js exits the process. */
export async function main (argv: string[], io: Pick<CommandContext, 'stdout' | 'stderr'> = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const controller = new AbortController()
  const onSignal = (): void => { controller.abort(new Error('interrupted')) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const { global, command, rest } = splitGlobalOptions(argv)
    if (global.version === true && command === undefined) {
      io.stdout.write(packageVersion() + '\n')
      return EXIT_OK
    }
    // `shoal help CMD` and `shoal CMD --help`: that command's own options and examples.
    const helpFor = command === 'help' ? rest[0] : global.help === true ? command : undefined
    if (helpFor !== undefined && COMMANDS[helpFor] !== undefined) {
      io.stdout.write(await commandHelp(helpFor) ?? HELP)
      return EXIT_OK
    }
    if (global.help === true || command === undefined || command === 'help') {
      io.stdout.write(HELP)
      return command === undefined && global.help !== true ? EXIT_USAGE : EXIT_OK
    }
    // Unknown commands and options are refused here, with commander's "(Did you mean …?)".
    await checkCommandLine(command, rest)
    const load = COMMANDS[command]
    if (load === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}`)
    const run = await load()
    return await run(rest, {
      dataDir: global.data ?? defaultDataDir(),
      dataExplicit: global.data !== undefined,
      json: global.json === true,
      api: global.api ?? nonEmpty(process.env[envOf(settingOf('api'))]),
      apiTokenFile: global.apiTokenFile ?? nonEmpty(process.env[envOf(settingOf('apiTokenFile'))]),
      signal: controller.signal,
      ...io,
    })
  } catch (err) {
    return report(err, io, controller.signal.aborted, argv.includes('--json'))
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

interface GlobalOptions { data?: string, json?: boolean, api?: string, apiTokenFile?: string, help?: boolean, version?: boolean }

function nonEmpty (value: string | undefined): string | undefined {
  return value === '' ? undefined : value
}

/** Global options may stand before the command or among its arguments. */
function splitGlobalOptions (argv: string[]): { global: GlobalOptions, command: string | undefined, rest: string[] } {
  const global: GlobalOptions = {}
  const rest: string[] = []
  let command: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    const [flag, inline] = arg.startsWith('--') ? splitInline(arg) : [arg, undefined]
    const value = (): string => {
      if (inline !== undefined) return inline
      const next = argv[++i]
      if (next === undefined) throw new UsageError(`${flag} needs a value`)
      return next
    }
    if (flag === '--data') global.data = value()
    else if (flag === '--api') global.api = value()
    else if (flag === '--api-token-file') global.apiTokenFile = value()
    else if (flag === '--json') global.json = true
    else if (flag === '--help' || flag === '-h') global.help = true
    else if ((flag === '--version' || flag === '-V') && command === undefined) global.version = true
    else if (command === undefined && !arg.startsWith('-')) command = arg
    else rest.push(arg)
  }
  return { global, command, rest }
}

function splitInline (arg: string): [string, string | undefined] {
  const eq = arg.indexOf('=')
  return eq < 0 ? [arg, undefined] : [arg.slice(0, eq), arg.slice(eq + 1)]
}

function report (err: unknown, io: Pick<CommandContext, 'stdout' | 'stderr'>, interrupted: boolean, json: boolean): number {
  // One catalogue (src/errors) gives every code its exit status; parseArgs's ERR_PARSE_ARGS_*
  // errors are usage errors.
  const { code, message, exit } = describeError(interrupted ? { code: 'INTERRUPTED' } : err)
  // Scripts read stdout: under --json the error is a document there too.
  if (json) io.stdout.write(JSON.stringify({ error: { code, message } }) + '\n')
  if (code === 'USAGE' || code === 'INTERRUPTED') io.stderr.write(`shoal: ${message}\n`)
  else io.stderr.write(`shoal: ${message} [${code}]\n`)
  const stack = err instanceof Error ? err.stack : undefined
  if (process.env.SHOAL_DEBUG === '1' && stack !== undefined) io.stderr.write(stack + '\n')
  return exit
}
