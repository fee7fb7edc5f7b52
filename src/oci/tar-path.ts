import { ArchiveUnsafePathError } from './errors.js'

/**
 * The layout-relative form of a tar entry name: `./` prefixes, `.` segments,
 * repeated and trailing slashes dropped (`./blobs/sha256/` → `blobs/sha256`; the
 * root `./` → ``). Refused: NUL, absolute paths, `..` segments. Tools differ only
 * in these spellings (skopeo writes no prefix, some tars write `./`), so one
 * normal form makes the same image give the same tree.
 */
export function normalizeEntryPath (name: string): string {
  if (name.includes('\0')) throw new ArchiveUnsafePathError(name, 'the path contains a NUL byte')
  if (name.startsWith('/')) throw new ArchiveUnsafePathError(name, 'the path is absolute')
  if (name.includes('\\')) throw new ArchiveUnsafePathError(name, 'the path contains a backslash, which some systems read as a separator')
  const segments = name.split('/').filter(segment => segment !== '' && segment !== '.')
  if (segments.includes('..')) throw new ArchiveUnsafePathError(name, 'the path has a ".." segment')
  return segments.join('/')
}

/**
 * Where a symlink entry points, as a normalized path, or an error if the target
 * is absolute or climbs out of the archive (`docker save` writes
 * `<id>/layer.tar -> ../<other id>/layer.tar` for layers two images share).
 */
export function resolveSymlinkTarget (linkPath: string, target: string): string {
  if (target.includes('\0')) throw new ArchiveUnsafePathError(linkPath, 'the link target contains a NUL byte')
  if (target.startsWith('/')) throw new ArchiveUnsafePathError(linkPath, `the link target ${JSON.stringify(target)} is absolute`)
  const resolved = linkPath.split('/').slice(0, -1)
  for (const segment of target.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') {
      if (resolved.length === 0) throw new ArchiveUnsafePathError(linkPath, `the link target ${JSON.stringify(target)} leaves the archive`)
      resolved.pop()
    } else {
      resolved.push(segment)
    }
  }
  return resolved.join('/')
}
