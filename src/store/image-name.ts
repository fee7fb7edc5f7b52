import { StoreError } from './errors.js'

export class InvalidRefError extends StoreError {
  constructor (name: string, why: string) {
    super('REF_INVALID', `ref ${JSON.stringify(name)} ${why}; write a full image name such as registry.example.com/team/app:1.0`)
    this.name = 'InvalidRefError'
  }
}

// distribution/reference's grammar, reduced to what a ref here must be: host/path:tag.
const HOST = /^(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+|[a-z0-9-]+(?::[0-9]+))(?::[0-9]+)?$/
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/

/**
 * Checks a full image name with its registry host and returns it with a tag (`:latest`
 * when none is given), so one image has one spelling in the ref table.
 */
export function normalizeImageName (name: string): string {
  const slash = name.indexOf('/')
  if (slash < 0) throw new InvalidRefError(name, 'has no registry host')
  const host = name.slice(0, slash)
  if (!HOST.test(host)) throw new InvalidRefError(name, `starts with ${JSON.stringify(host)}, which is not a registry host`)
  let rest = name.slice(slash + 1)
  if (rest.includes('@')) throw new InvalidRefError(name, 'has a digest; a ref names a tag')
  let tag = 'latest'
  const colon = rest.lastIndexOf(':')
  if (colon >= 0) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
  }
  if (!TAG.test(tag)) throw new InvalidRefError(name, `has the tag ${JSON.stringify(tag)}, which is not a valid tag`)
  if (rest.length === 0 || !rest.split('/').every(c => PATH_COMPONENT.test(c))) throw new InvalidRefError(name, 'has a repository path that is not lowercase letters, digits and separators')
  return `${host}/${rest}:${tag}`
}

/** `registry.example.com/team/app:1.0` → host, repository and tag. */
export function splitImageName (name: string): { host: string, repository: string, tag: string } {
  const normalized = normalizeImageName(name)
  const slash = normalized.indexOf('/')
  const colon = normalized.lastIndexOf(':')
  return { host: normalized.slice(0, slash), repository: normalized.slice(slash + 1, colon), tag: normalized.slice(colon + 1) }
}
