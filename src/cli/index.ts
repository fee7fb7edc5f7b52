import { defaultDataDir, type Command, type CommandContext } from './context.js'
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE } from './exit-codes.js'
import { HELP } from './help.js'
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
  keygen: async () => (await import('./keygen.js')).keygen,
}

const NOT_FOUND_CODES = new Set(['BUNDLE_NOT_FOUND', 'MANIFEST_NOT_FOUND', 'STORE_NOT_FOUND', 'SWARM_BUNDLE_NOT_FOUND', 'ENOENT'])

/** Runs one command line and returns the exit code; only bin/shoal.js exits the process. */
export async function main (argv: string[], io: Pick<CommandContext, 'stdout' | 'stderr'> = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const controller = new AbortController()
  const onSignal = (): void => { controller.abort(new Error('interrupted')) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const { global, command, rest } = splitGlobalOptions(argv)
    if (global.help === true || command === undefined || command === 'help') {
      io.stdout.write(HELP)
      return command === undefined && global.help !== true ? EXIT_USAGE : EXIT_OK
    }
    const load = COMMANDS[command]
    if (load === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}`)
    const run = await load()
    return await run(rest, {
      dataDir: global.data ?? defaultDataDir(),
      dataExplicit: global.data !== undefined,
      json: global.json === true,
      api: global.api ?? nonEmpty(process.env.SHOAL_API),
      apiTokenFile: global.apiTokenFile ?? nonEmpty(process.env.SHOAL_API_TOKEN_FILE),
      signal: controller.signal,
      ...io,
    })
  } catch (err) {
    return report(err, io.stderr, controller.signal.aborted)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

interface GlobalOptions { data?: string, json?: boolean, api?: string, apiTokenFile?: string, help?: boolean }

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
    else if (command === undefined && !arg.startsWith('-')) command = arg
    else rest.push(arg)
  }
  return { global, command, rest }
}

function splitInline (arg: string): [string, string | undefined] {
  const eq = arg.indexOf('=')
  return eq < 0 ? [arg, undefined] : [arg.slice(0, eq), arg.slice(eq + 1)]
}

function report (err: unknown, stderr: CommandContext['stderr'], interrupted: boolean): number {
  if (interrupted) {
    stderr.write('shoal: interrupted; nothing half-done was kept\n')
    return EXIT_INTERRUPTED
  }
  const error = err as Error & { code?: string }
  // parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes for unknown or malformed options.
  if (error instanceof UsageError || error.code?.startsWith('ERR_PARSE_ARGS') === true) {
    stderr.write(`shoal: ${error.message}\n`)
    return EXIT_USAGE
  }
  stderr.write(`shoal: ${error.message}${error.code !== undefined ? ` [${error.code}]` : ''}\n`)
  if (process.env.SHOAL_DEBUG === '1' && error.stack !== undefined) stderr.write(error.stack + '\n')
  return error.code !== undefined && NOT_FOUND_CODES.has(error.code) ? EXIT_NOT_FOUND : EXIT_FAILURE
}

