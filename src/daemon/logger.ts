/** Structured logs: one JSON object a line on stderr, so journald and jq read them as they are. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export interface Logger {
  debug: (msg: string, fields?: Record<string, unknown>) => void
  info: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
  error: (msg: string, fields?: Record<string, unknown>) => void
  child: (fields: Record<string, unknown>) => Logger
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export function createLogger (level: LogLevel = 'info', base: Record<string, unknown> = {}, out: NodeJS.WritableStream = process.stderr): Logger {
  const write = (at: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[at] < ORDER[level]) return
    out.write(JSON.stringify({ time: new Date().toISOString(), level: at, msg, ...base, ...fields }, errorReplacer) + '\n')
  }
  return {
    debug: (msg, fields) => { write('debug', msg, fields) },
    info: (msg, fields) => { write('info', msg, fields) },
    warn: (msg, fields) => { write('warn', msg, fields) },
    error: (msg, fields) => { write('error', msg, fields) },
    child: fields => createLogger(level, { ...base, ...fields }, out),
  }
}

function errorReplacer (_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as Error & { code?: string }).code }
  return value
}
