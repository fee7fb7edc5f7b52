import { CodedError, ERROR_CATALOGUE, type RegistryCode } from '../errors/index.js'

/**
 * The codes the registry API answers with: a view of the one catalogue (src/errors), which
 * holds their statuses and messages. Codes come from the distribution-spec error table
 * ("Error Codes", code-1 … code-14), from Docker's registry where the spec is silent
 * (RANGE_INVALID, TAG_INVALID, PAGINATION_NUMBER_INVALID, UNAVAILABLE, UNKNOWN), and one of
 * ours (NOT_FOUND, for paths that are not part of the API). One code has one status: callers
 * never pick a status, they pick a code.
 */
const REGISTRY_CODES = [
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS',
  'RANGE_INVALID', 'TAG_INVALID', 'PAGINATION_NUMBER_INVALID', 'NOT_FOUND', 'UNAVAILABLE', 'UNKNOWN',
] as const satisfies readonly RegistryCode[]

export const REGISTRY_ERRORS = Object.fromEntries(REGISTRY_CODES.map(code => [code, ERROR_CATALOGUE[code]])) as { [C in RegistryCode]: typeof ERROR_CATALOGUE[C] }

export type RegistryErrorCode = RegistryCode

/** One entry of the spec's error body. */
export interface ErrorBodyEntry {
  code: RegistryErrorCode
  message: string
  detail?: unknown
}

export interface RegistryErrorOptions extends ErrorOptions {
  /** Machine-readable context; the spec puts e.g. `{ digest }` here. */
  detail?: unknown
  /** Headers the answer needs besides the body (`Content-Range` on a 416, `Range` on an upload). */
  headers?: Record<string, string | number>
}

/** A failure the API reports to the client; its status comes from the catalogue. */
export class RegistryError extends Error {
  override readonly name = 'RegistryError'
  readonly code: RegistryErrorCode
  readonly status: number
  readonly detail: unknown
  readonly headers: Record<string, string | number>

  constructor (code: RegistryErrorCode, message?: string, options: RegistryErrorOptions = {}) {
    super(message ?? REGISTRY_ERRORS[code].message, options)
    this.code = code
    this.status = REGISTRY_ERRORS[code].status
    this.detail = options.detail
    this.headers = options.headers ?? {}
  }

  /** The spec's body: `{"errors":[{"code","message","detail"}]}`. */
  toBody (): { errors: ErrorBodyEntry[] } {
    const entry: ErrorBodyEntry = { code: this.code, message: this.message }
    if (this.detail !== undefined) entry.detail = this.detail
    return { errors: [entry] }
  }
}

/** The request was aborted because its client went away; nothing can be answered. */
export class ClientGoneError extends CodedError<'CLIENT_GONE'> {
  override readonly name = 'ClientGoneError'
  constructor () { super('CLIENT_GONE', 'the client closed the connection') }
}

/** A wait inside a request ran out of time (a source that sends nothing, a body that stalls). */
export class RequestTimeoutError extends CodedError<'REQUEST_TIMEOUT'> {
  override readonly name = 'RequestTimeoutError'
  constructor (what: string, ms: number) { super('REQUEST_TIMEOUT', `${what}: nothing happened for ${ms} ms`) }
}
