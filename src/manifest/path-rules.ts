import { UnsafePathError } from './errors.js'

/**
 * DESIGN.md input rules for a path as it appears in a manifest (`./a/b`, `./dir/`, `./`):
 * relative, no `..` or empty segment, no NUL or newline. Applied to every manifest read
 * from anywhere, because a manifest decides where checkout writes files.
 */
export function checkManifestPath (path: string): void {
  if (path === './') return
  if (!path.startsWith('./')) throw new UnsafePathError(path, 'it does not start with "./"')
  if (path.includes('\0')) throw new UnsafePathError(path, 'it contains a NUL byte')
  if (path.includes('\n') || path.includes('\r')) throw new UnsafePathError(path, 'it contains a line break')
  const body = path.endsWith('/') ? path.slice(2, -1) : path.slice(2)
  for (const segment of body.split('/')) {
    if (segment === '..') throw new UnsafePathError(path, 'it has a ".." segment')
    if (segment === '.' || segment === '') throw new UnsafePathError(path, 'it has an empty or "." segment')
  }
}

/** The parent directory path of a manifest path (`./a/b` → `./a/`, `./a/` → `./`). */
export function parentPath (path: string): string {
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path
  const slash = trimmed.lastIndexOf('/')
  return trimmed.slice(0, slash + 1)
}

/** Orders paths as snapdir does (`sort -k5` in the C locale): by their UTF-8 bytes. */
export function comparePaths (a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}
