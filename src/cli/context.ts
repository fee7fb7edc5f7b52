import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Writable } from 'node:stream'
import { openStore, type Store } from '../store/index.js'
import { CodedError } from '../errors/index.js'
import { findDaemon, NAME_THE_DAEMON, type DaemonApi } from './daemon-client.js'

/** What every command gets: where the store is, how to print, when to stop. */
export interface CommandContext {
  dataDir: string
  /** True when `--data` was given (the daemon command's data directory setting). */
  dataExplicit: boolean
  json: boolean
  /** A running daemon's control API (a socket path or `HOST:PORT`), if one was named. */
  api: string | undefined
  /** The bearer token's file, for a control API on TCP. */
  apiTokenFile: string | undefined
  stdout: Writable & { isTTY?: boolean }
  stderr: Writable & { isTTY?: boolean }
  signal: AbortSignal
}

export type Command = (args: string[], context: CommandContext) => Promise<number>

/** `--data` wins, then `$SHOAL_DATA`, then the XDG default. */
export function defaultDataDir (env: NodeJS.ProcessEnv = process.env): string {
  if (env.SHOAL_DATA !== undefined && env.SHOAL_DATA !== '') return env.SHOAL_DATA
  const dataHome = env.XDG_DATA_HOME !== undefined && env.XDG_DATA_HOME !== '' ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share')
  return join(dataHome, 'shoal')
}

/** Opens the store for one task; `create: false` for commands that only read or remove. */
export async function withStore<T> (context: CommandContext, task: (store: Store) => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  const store = await openStore({ dir: context.dataDir, signal: context.signal, create: options.create })
  try {
    return await task(store)
  } finally {
    await store.close()
  }
}

export function printJson (context: CommandContext, value: unknown): void {
  context.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

/** Prints a walk's warning (a skipped dangling symlink) on stderr, where pipes do not take it. */
export function warn (context: CommandContext): (warning: { code: string, message: string }) => void {
  return warning => { context.stderr.write(`shoal: warning: ${warning.message} [${warning.code}]\n`) }
}

export function printLine (context: CommandContext, line: string): void {
  context.stdout.write(line + '\n')
}

/**
 * Runs a command through the running daemon when there is one (it holds the store's lock),
 * or on the store directly when there is none.
 */
export async function viaDaemonOrStore<T> (context: CommandContext, viaDaemon: (api: DaemonApi) => Promise<T>, viaStore: (store: Store) => Promise<T>): Promise<T> {
  const api = await findDaemon(context)
  if (api !== undefined) return await viaDaemon(api)
  try {
    // Every command routed here reads or removes: none of them should leave a new empty store.
    return await withStore(context, viaStore, { create: false })
  } catch (err) {
    // No daemon answered and there is no store here: most often a daemon runs with its
    // socket elsewhere (the systemd unit's), and `shoal ls` as root looked in ~/.local/share.
    if (err instanceof CodedError && err.code === 'STORE_NOT_FOUND') throw new CodedError(err.code, `${err.message}; or ${NAME_THE_DAEMON}`, { cause: err })
    throw err
  }
}
