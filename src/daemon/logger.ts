import { pino, stdSerializers, stdTimeFunctions, type Logger as PinoLogger } from 'pino'
import { build as prettyStream } from 'pino-pretty'

/**
 * Structured logs through pino: one JSON object a line on stderr (journald and jq read them as
 * they are), or pino-pretty's lines when a person watches a terminal. Secrets are redacted
 * before anything is written, wherever a caller put them in the fields.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
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
  return {
    debug: (msg, fields) => { log.debug(fields ?? {}, msg) },
    info: (msg, fields) => { log.info(fields ?? {}, msg) },
    warn: (msg, fields) => { log.warn(fields ?? {}, msg) },
    error: (msg, fields) => { log.error(fields ?? {}, msg) },
    child: fields => wrap(log.child(fields)),
  }
}

/** An error as a log shows it: what a person acts on, the stack only when it is a fault. */
function errorFields (value: unknown): unknown {
  if (!(value instanceof Error)) return value
  const code = (value as Error & { code?: unknown }).code
  const fields: Record<string, unknown> = { name: value.name, message: value.message }
  if (code !== undefined) fields.code = code
  else fields.stack = stdSerializers.err(value).stack
  return fields
}
