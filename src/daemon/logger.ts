import { pino, stdSerializers, stdTimeFunctions, type Logger as PinoLogger } from 'pino'
import { build as prettyStream } from 'pino-pretty'
import type { LogLevel } from '../settings/index.js'

/**
 * Structured logs through pino: one JSON object a line on stderr (journald and jq read them as
 * they are), or pino-pretty's lines when a person watches a terminal. Secrets are redacted
 * before anything is written, wherever a caller put them in the fields.
 */
export type LogFormat = 'json' | 'pretty' | 'auto'

export interface Logger {
  debug: (msg: string, fields?: Record<string, unknown>) => void
  info: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
  error: (msg: string, fields?: Record<string, unknown>) => void
  child: (fields: Record<string, unknown>) => Logger
}

/** Written in place of a secret. */
export const REDACTED = '[redacted]'

/**
 * Field names that hold secrets, at the top of a log line or one or two levels down (a config,
 * request headers). Keys are matched as written: the config uses camelCase, HTTP headers lower case.
 */
const SECRET_KEYS = [
  'password', 'upstreamPassword', 'token', 'apiToken', 'bearer', 'authorization', 'Authorization', 'cookie',
  'swarmKey', 'privateKey', 'credentials', 'secret',
]
const REDACT_PATHS = SECRET_KEYS.flatMap(key => [key, `*.${key}`, `*.*.${key}`])

export interface LoggerOptions {
  /** `auto` (the default): pretty when `out` is a terminal, JSON otherwise. */
  format?: LogFormat
}

export function createLogger (level: LogLevel = 'info', base: Record<string, unknown> = {}, out: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr, options: LoggerOptions = {}): Logger {
  const pretty = options.format === 'pretty' || ((options.format ?? 'auto') === 'auto' && out.isTTY === true)
  const destination = pretty
    ? prettyStream({ destination: out, sync: true, colorize: out.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
    : out
  const root = pino({
    level,
    base,
    messageKey: 'msg',
    timestamp: stdTimeFunctions.isoTime,
    // Level names, not numbers: `jq 'select(.level == "warn")'` should work.
    formatters: { level: label => ({ level: label }) },
    serializers: { err: errorFields, error: errorFields },
    redact: { paths: REDACT_PATHS, censor: REDACTED },
  }, destination)
  return wrap(root)
}

function wrap (log: PinoLogger): Logger {
  const write = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>): void => {
    try {
      log[level](plainFields(fields), msg)
    } catch (err) {
      // A log line must never take the daemon down: write the message without its fields.
      log[level]({ logFieldsDropped: err instanceof Error ? err.message : String(err) }, msg)
    }
  }
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error'), child: fields => wrap(log.child(plainFields(fields))) }
}

/**
 * Fields with DOM-style events and event targets (a stream's 'close' event, an AbortSignal)
 * described instead of passed on: redaction reads their keys through a copy, and their getters
 * throw ERR_INVALID_THIS on anything but the real object — one such field crashed a daemon.
 */
function plainFields (fields: Record<string, unknown> | undefined): Record<string, unknown> {
  if (fields === undefined) return {}
  let out: Record<string, unknown> | undefined
  for (const [key, value] of Object.entries(fields)) {
    const plain = value instanceof Event ? { event: value.type } : value instanceof AbortSignal ? { aborted: value.aborted } : value
    if (plain === value) continue
    out ??= { ...fields }
    out[key] = plain
  }
  return out ?? fields
}

/**
 * JavaScript's own error names. One of these without a code is a fault (ours or a library's bug)
 * and shows its stack; an error a library named itself (libp2p's ConnectionFailedError,
 * TimeoutError…) is a condition of the network, and its stack says nothing an operator acts on.
 */
const FAULT_NAMES = new Set(['Error', 'TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'EvalError', 'URIError'])
/** An AggregateError (libp2p's "All multiaddr dials failed") shows this many of its errors. */
const AGGREGATED_SHOWN = 8

/** An error as a log shows it: what a person acts on, the stack only when it is a fault. */
function errorFields (value: unknown): unknown {
  if (!(value instanceof Error)) return value
  const code = (value as Error & { code?: unknown }).code
  const fields: Record<string, unknown> = { name: value.name, message: value.message }
  if (code !== undefined) fields.code = code
  else if (value instanceof AggregateError) fields.errors = (value.errors as unknown[]).slice(0, AGGREGATED_SHOWN).map(errorFields)
  else if (FAULT_NAMES.has(value.name)) fields.stack = stdSerializers.err(value).stack
  return fields
}
