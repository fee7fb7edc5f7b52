import { InvalidRefError, normalizeImageName } from '../store/index.js'
import { RegistryError } from './errors.js'

/** A repository as a request names it, resolved to the registry host its refs are filed under. */
export interface RepositoryName {
  /** The name as the path spelt it (`team/app` in mirror form); Location headers and tags/list echo it. */
  path: string
  host: string
  /** The repository path under the host: `team/app`. */
  repository: string
  /** containerd's `?ns=<registry host>`; answered with an `OCI-Namespace` header. */
  namespace?: string
}

/** distribution-spec "Pulling manifests": many clients limit a name (host included) to 255 characters. */
const MAX_NAME_LENGTH = 255

/**
 * Resolves `<name>` of `/v2/<name>/…`. Mirror form: containerd sends `?ns=registry.example.com`
 * and the path holds only the repository. Otherwise the first component is the registry host
 * when it looks like one (Docker's rule: a `.` or `:` in it, or `localhost`); a name without
 * one is filed under `defaultHost`, so what is pushed as `team/app` pulls back as `team/app`.
 */
export function parseRepositoryName (path: string, namespace: string | null, defaultHost: string): RepositoryName {
  if (path.length === 0 || path.length > MAX_NAME_LENGTH) {
    throw new RegistryError('NAME_INVALID', `repository name must be 1 to ${MAX_NAME_LENGTH} characters`, { detail: { name: path.slice(0, MAX_NAME_LENGTH) } })
  }
  let host: string
  let repository: string
  if (namespace !== null) {
    if (namespace.includes('/')) throw new RegistryError('NAME_INVALID', `ns=${JSON.stringify(namespace)} is not a registry host`, { detail: { ns: namespace } })
    host = namespace
    repository = path
  } else {
    const slash = path.indexOf('/')
    const first = slash < 0 ? path : path.slice(0, slash)
    const hasHost = slash > 0 && (first.includes('.') || first.includes(':') || first === 'localhost')
    host = hasHost ? first : defaultHost
    repository = hasHost ? path.slice(slash + 1) : path
  }
  try {
    // The store's grammar (distribution/reference, host required) is the one refs are filed under.
    normalizeImageName(`${host}/${repository}:latest`)
  } catch (err) {
    if (err instanceof InvalidRefError) throw new RegistryError('NAME_INVALID', err.message, { detail: { name: path }, cause: err })
    throw err
  }
  const name: RepositoryName = { path, host, repository }
  if (namespace !== null) name.namespace = namespace
  return name
}

/** The ref a tag of this repository is stored as: `registry.example.com/team/app:1.0`. */
export function imageRefOf (name: RepositoryName, tag: string): string {
  return `${name.host}/${name.repository}:${tag}`
}

/** Every ref of this repository starts with this (a tag has no `/`, so sub-repositories never match). */
export function tagPrefixOf (name: RepositoryName): string {
  return `${name.host}/${name.repository}:`
}

export interface Sha256Digest {
  /** `sha256:<hex>` */
  digest: string
  hex: string
}

// image-spec descriptor.md "Digests": algorithm ":" encoded.
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/
const SHA256_DIGEST = /^sha256:([0-9a-f]{64})$/

/**
 * A digest from a path or a query. Objects are indexed by sha256 only, and image-spec
 * requires lowercase hex for it, so anything else is DIGEST_INVALID: a well-formed digest
 * of another algorithm gets a message saying so.
 */
export function parseDigest (value: string): Sha256Digest {
  const match = SHA256_DIGEST.exec(value)
  if (match?.[1] !== undefined) return { digest: value, hex: match[1] }
  const shown = value.slice(0, 100)
  if (DIGEST_GRAMMAR.test(value) && !value.startsWith('sha256:')) {
    throw new RegistryError('DIGEST_INVALID', `digest algorithm ${JSON.stringify(value.slice(0, value.indexOf(':')))} is not supported here; use sha256`, { detail: { digest: shown } })
  }
  throw new RegistryError('DIGEST_INVALID', 'a digest must be "sha256:" followed by 64 lowercase hex digits', { detail: { digest: shown } })
}

export type Reference = { kind: 'tag', tag: string } | { kind: 'digest', digest: Sha256Digest }

// distribution-spec "Pulling manifests": the tag grammar.
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/

/** `<reference>` of `/manifests/<reference>`: a tag, or a digest (it has a colon, a tag cannot). */
export function parseReference (value: string): Reference {
  if (value.includes(':')) return { kind: 'digest', digest: parseDigest(value) }
  if (!TAG.test(value)) throw new RegistryError('TAG_INVALID', 'a tag is 1 to 128 letters, digits, "_", "." or "-", and does not start with "." or "-"', { detail: { tag: value.slice(0, 128) } })
  return { kind: 'tag', tag: value }
}
