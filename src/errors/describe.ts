import { ERROR_CATALOGUE, type CatalogueEntry, type ErrorCode, type RegistryCode } from './catalogue.js'

export function isErrorCode (code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code)
}

/** The catalogue's entry for a code; an unknown or missing code is INTERNAL. */
export function catalogueEntry (code: unknown): CatalogueEntry & { code: ErrorCode } {
  const known: ErrorCode = isErrorCode(code) ? code : 'INTERNAL'
  return { code: known, ...ERROR_CATALOGUE[known] }
}

/** Fills a code's template: `{name}` → `params.name` (left as is when absent). */
export function formatMessage (code: ErrorCode, params: Record<string, string | number> = {}): string {
  return ERROR_CATALOGUE[code].message.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = params[name]
    return value === undefined ? whole : String(value)
  })
}

/**
 * What any thrown value becomes at an edge (the CLI, the control API): its own message, else
 * the template; the status and exit code of its code in the catalogue. A code the catalogue
 * does not know (a system error such as EACCES) is shown as it is and treated as INTERNAL;
 * no code at all is INTERNAL. Node's parseArgs errors are usage errors.
 */
export function describeError (err: unknown): { code: string, message: string, status: number, exit: number } {
  const raw = (err as { code?: unknown } | undefined)?.code
  const code: unknown = typeof raw === 'string' && raw.startsWith('ERR_PARSE_ARGS') ? 'USAGE' : raw
  const entry = catalogueEntry(code)
  const own = err instanceof Error ? err.message : typeof err === 'string' ? err : ''
  const shown = typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code) ? code : entry.code
  return { code: shown, message: own !== '' ? own : entry.message, status: entry.status, exit: entry.exit }
}

/** The spec code the registry API answers with for an error of this code. */
export function registryCodeOf (code: unknown): RegistryCode {
  const entry = catalogueEntry(code)
  if (entry.source !== 'shoal' || entry.code === 'NOT_FOUND') return entry.code as RegistryCode
  return entry.registry ?? 'UNKNOWN'
}
