/**
 * Every error the registry API answers with, in one table: code → HTTP status → message.
 * Codes come from the distribution-spec error table ("Error Codes", code-1 … code-14),
 * from Docker's registry where the spec is silent (RANGE_INVALID, TAG_INVALID,
 * PAGINATION_NUMBER_INVALID, UNAVAILABLE, UNKNOWN), and one of ours (NOT_FOUND, for
 * paths that are not part of the API). One code has one status: callers never pick a
 * status, they pick a code.
 */
export const ERROR_CATALOGUE = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry', source: 'oci' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid', source: 'oci' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry', source: 'oci' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content', source: 'oci' },
  // distribution-spec "Pushing Manifests": a manifest naming an absent blob is refused with 400.
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry', source: 'oci' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid', source: 'oci' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry', source: 'oci' },
  NAME_INVALID: { status: 400, message: 'invalid repository name', source: 'oci' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry', source: 'oci' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length', source: 'oci' },
  UNAUTHORIZED: { status: 401, message: 'authentication required', source: 'oci' },
  DENIED: { status: 403, message: 'requested access to the resource is denied', source: 'oci' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported', source: 'oci' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests', source: 'oci' },
  // distribution-spec: 416 Requested Range Not Satisfiable, for blob reads and out-of-order upload chunks.
  RANGE_INVALID: { status: 416, message: 'invalid content range', source: 'docker' },
  TAG_INVALID: { status: 400, message: 'invalid tag', source: 'docker' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested', source: 'docker' },
  NOT_FOUND: { status: 404, message: 'not part of this API', source: 'shoal' },
  UNAVAILABLE: { status: 503, message: 'service unavailable', source: 'docker' },
  UNKNOWN: { status: 500, message: 'unknown error', source: 'docker' },
} as const satisfies Record<string, { status: number, message: string, source: 'oci' | 'docker' | 'shoal' }>

export type RegistryErrorCode = keyof typeof ERROR_CATALOGUE

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
    super(message ?? ERROR_CATALOGUE[code].message, options)
    this.code = code
    this.status = ERROR_CATALOGUE[code].status
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
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError'
  readonly code = 'CLIENT_GONE'
  constructor () { super('the client closed the connection') }
}

/** A wait inside a request ran out of time (a source that sends nothing, a body that stalls). */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError'
  readonly code = 'REQUEST_TIMEOUT'
  constructor (what: string, ms: number) { super(`${what}: nothing happened for ${ms} ms`) }
}
