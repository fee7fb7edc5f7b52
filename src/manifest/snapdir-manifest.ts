import { blake3Hex } from '../hash/index.js'
import { MAX_MANIFEST_BYTES, MAX_MANIFEST_ENTRIES } from './constants.js'
import { DuplicatePathError, ManifestSyntaxError, ManifestTooLargeError } from './errors.js'
import { checkManifestPath, comparePaths, parentPath } from './path-rules.js'

/** One line of a snapdir manifest: `TYPE PERMS CHECKSUM SIZE PATH`. */
export interface ManifestEntry {
  type: 'F' | 'D'
  /** Octal mode as `stat -c %a` prints it, e.g. `644`. */
  perms: string
  /** Lowercase hex BLAKE3: of the bytes (file) or of the sorted unique child checksums (directory). */
  checksum: string
  /** Bytes in the file, or the sum of a directory's children. */
  size: number
  /** `./`-relative; a directory ends with `/`; the root is `./`. */
  path: string
  /**
   * For a symlink to a file: the target's byte count. snapdir writes the link's own SIZE (the
   * length of the link text), so the object's size is kept beside it; never part of the text.
   */
  objectSize?: number
}

const CHECKSUM_PATTERN = /^[0-9a-f]{64}$/
const PERMS_PATTERN = /^[0-7]{1,4}$/
const SIZE_PATTERN = /^(0|[1-9][0-9]{0,15})$/

/** The manifest text: entries in snapdir order, each line ending with a newline. */
export function formatManifest (entries: readonly ManifestEntry[]): string {
  const sorted = [...entries].sort((a, b) => comparePaths(a.path, b.path))
  return sorted.map(e => `${e.type} ${e.perms} ${e.checksum} ${e.size} ${e.path}\n`).join('')
}

/** The snapdir ID: BLAKE3 of the manifest text with exactly one trailing newline. */
export function snapdirId (manifestText: string): string {
  return blake3Hex(Buffer.from(manifestText.replace(/\n*$/, '\n')))
}

/**
 * Parses manifest text from anywhere (a file, a peer, a store) and enforces DESIGN.md's
 * input rules, so nothing downstream ever sees an unsafe or ambiguous path.
 */
export function parseManifest (text: string): ManifestEntry[] {
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) throw new ManifestTooLargeError('bytes', MAX_MANIFEST_BYTES)
  const entries: ManifestEntry[] = []
  const seen = new Set<string>()
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ''
    if (line === '' || line.startsWith('#')) continue
    const entry = parseLine(line, i + 1)
    if (seen.has(entry.path)) throw new DuplicatePathError(entry.path)
    seen.add(entry.path)
    entries.push(entry)
    if (entries.length > MAX_MANIFEST_ENTRIES) throw new ManifestTooLargeError('entries', MAX_MANIFEST_ENTRIES)
  }
  checkTreeShape(entries, seen)
  return entries.sort((a, b) => comparePaths(a.path, b.path))
}

function parseLine (line: string, lineNumber: number): ManifestEntry {
  const fields: string[] = []
  let rest = line
  for (let i = 0; i < 4; i++) {
    const space = rest.indexOf(' ')
    if (space < 0) throw new ManifestSyntaxError(lineNumber, 'fewer than five fields')
    fields.push(rest.slice(0, space))
    rest = rest.slice(space + 1)
  }
  const [type, perms, checksum, size] = fields as [string, string, string, string]
  const path = rest
  if (type !== 'F' && type !== 'D') throw new ManifestSyntaxError(lineNumber, `type ${JSON.stringify(type)} is neither F nor D`)
  if (!PERMS_PATTERN.test(perms)) throw new ManifestSyntaxError(lineNumber, `permissions ${JSON.stringify(perms)} are not octal`)
  if (!CHECKSUM_PATTERN.test(checksum)) throw new ManifestSyntaxError(lineNumber, 'checksum is not 64 lowercase hex digits')
  if (!SIZE_PATTERN.test(size) || !Number.isSafeInteger(Number(size))) throw new ManifestSyntaxError(lineNumber, `size ${JSON.stringify(size)} is not a whole number`)
  checkManifestPath(path)
  if ((type === 'D') !== path.endsWith('/')) throw new ManifestSyntaxError(lineNumber, 'a directory path must end with "/" and a file path must not')
  return { type, perms, checksum, size: Number(size), path }
}

/** Every entry's parent directory must itself be listed, so the tree has one shape. */
function checkTreeShape (entries: readonly ManifestEntry[], paths: ReadonlySet<string>): void {
  if (entries.length === 0) return
  if (!paths.has('./')) throw new ManifestSyntaxError(0, 'the root directory "./" is missing')
  for (const entry of entries) {
    if (entry.path === './') continue
    const parent = parentPath(entry.path)
    if (!paths.has(parent)) throw new ManifestSyntaxError(0, `${JSON.stringify(entry.path)} has no directory entry for its parent ${JSON.stringify(parent)}`)
  }
}

/** snapdir's directory rule: BLAKE3 of the sorted, de-duplicated child checksums, concatenated. */
export function directoryChecksum (childChecksums: Iterable<string>): string {
  const unique = [...new Set(childChecksums)].sort()
  return blake3Hex(Buffer.from(unique.join('')))
}

/**
 * Recomputes every directory's checksum and size from its children and compares them with
 * the manifest's; a manifest that fails this describes no real tree.
 */
export function checkDirectoryChecksums (entries: readonly ManifestEntry[]): void {
  const children = new Map<string, ManifestEntry[]>()
  for (const entry of entries) {
    if (entry.path === './') continue
    const parent = parentPath(entry.path)
    const list = children.get(parent) ?? []
    list.push(entry)
    children.set(parent, list)
  }
  for (const entry of entries) {
    if (entry.type !== 'D') continue
    const kids = children.get(entry.path) ?? []
    const checksum = directoryChecksum(kids.map(k => k.checksum))
    const size = kids.reduce((sum, k) => sum + k.size, 0)
    if (checksum !== entry.checksum || size !== entry.size) {
      throw new ManifestSyntaxError(0, `directory ${JSON.stringify(entry.path)} does not match its children (checksum or size)`)
    }
  }
}
