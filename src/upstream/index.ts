// The upstream module's only import surface: a client of one origin registry that
// pull-through uses (DESIGN.md "The local HTTP API": on a miss, fetch, verify, store, seed).
// It fetches into the store; the HTTP layer decides when to ask and turns what it stored
// into a bundle. Errors carry stable `code`s (errors.ts).
import { Upstream, type UpstreamComponents, type UpstreamInit } from './upstream.js'

export function createUpstream (components: UpstreamComponents, init: UpstreamInit): Upstream {
  return new Upstream(components, init)
}

export { Upstream, type UpstreamComponents, type UpstreamInit, type FetchedManifest } from './upstream.js'
export type { Credentials } from './token-auth.js'
export { parseChallenge, type AuthChallenge } from './auth-challenge.js'
export {
  UpstreamError, UpstreamNotFoundError, UpstreamUnavailableError, UpstreamUnauthorizedError, UpstreamDigestMismatchError,
  UpstreamTooLargeError, UpstreamManifestInvalidError, UpstreamConfigError,
} from './errors.js'
export { MANIFEST_ACCEPT } from './manifest-references.js'
