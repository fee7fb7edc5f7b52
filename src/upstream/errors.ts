import { CodedError } from '../errors/index.js'

/** Base of every upstream error: callers (the HTTP layer) branch on `code`. */
export class UpstreamError extends CodedError {
  override name = 'UpstreamError'
}

/** The upstream answered 404: it does not have this manifest or blob. */
export class UpstreamNotFoundError extends UpstreamError {
  constructor (what: string) {
    super('UPSTREAM_NOT_FOUND', `the upstream registry has no ${what}`)
    this.name = 'UpstreamNotFoundError'
  }
}

/** The upstream could not be reached, timed out, or answered with a status we cannot use. */
export class UpstreamUnavailableError extends UpstreamError {
  constructor (message: string, options?: ErrorOptions & { status?: number }) {
    super('UPSTREAM_UNAVAILABLE', message, options)
    this.name = 'UpstreamUnavailableError'
    this.status = options?.status
  }

  readonly status: number | undefined
}

/** The upstream refused our credentials (or wants some and we have none). */
export class UpstreamUnauthorizedError extends UpstreamError {
  constructor (message: string) {
    super('UPSTREAM_UNAUTHORIZED', message)
    this.name = 'UpstreamUnauthorizedError'
  }
}

/** Bytes from the upstream do not hash to the digest they were asked by: nothing was stored. */
export class UpstreamDigestMismatchError extends UpstreamError {
  constructor (readonly expected: string, readonly actual: string, what: string) {
    super('UPSTREAM_DIGEST_MISMATCH', `${what} from the upstream hashes to ${actual}, not ${expected}; nothing was stored`)
    this.name = 'UpstreamDigestMismatchError'
  }
}

/** A body larger than its descriptor (or our limit) says: cut off, nothing stored. */
export class UpstreamTooLargeError extends UpstreamError {
  /** `bound`: where the limit comes from, when not this node's own (the manifest's descriptor, the upstream's Content-Length). */
  constructor (what: string, limit: number, bound?: string) {
    super('UPSTREAM_TOO_LARGE', bound === undefined
      ? `${what} from the upstream is over ${limit} bytes; nothing was stored`
      : `${what}: the upstream sent more than the ${limit} bytes ${bound} gives; cut there, nothing was stored (the upstream or something between it and this node is sending the wrong bytes)`)
    this.name = 'UpstreamTooLargeError'
  }
}

/** A manifest from the upstream that is not one we can store (media type, JSON, descriptors). */
export class UpstreamManifestInvalidError extends UpstreamError {
  constructor (message: string) {
    super('UPSTREAM_MANIFEST_INVALID', message)
    this.name = 'UpstreamManifestInvalidError'
  }
}

/** The `--upstream` setting is not a usable registry URL. */
export class UpstreamConfigError extends UpstreamError {
  constructor (message: string) {
    super('UPSTREAM_CONFIG_INVALID', message)
    this.name = 'UpstreamConfigError'
  }
}
