import { blake3Hex } from '../hash/index.js'
import { BUNDLE_FORMAT_VERSION, CHUNK_SIZE_BYTES, MAX_MANIFEST_BYTES } from './constants.js'
import { BundleIdMismatchError, BundleManifestError } from './errors.js'
import { checkDirectoryChecksums, formatManifest, parseManifest, type ManifestEntry } from './snapdir-manifest.js'

/**
 * A bundle: the snapdir manifest of a tree plus, for every object larger than one chunk,
 * the BLAKE3 of each of its chunks, so a receiver can verify a chunk on its own.
 */
export interface BundleManifest {
  version: number
  chunkSize: number
  /** The snapdir manifest text, exactly as `formatManifest` writes it. */
  manifestText: string
  entries: ManifestEntry[]
  /** object hash → chunk hashes, only for objects over one chunk. */
  chunkTables: Map<string, string[]>
  /**
   * object hash → its byte count, only for objects that some entry lists with another SIZE:
   * a symlink to a file, whose snapdir SIZE is the length of the link text.
   */
  objectSizes: Map<string, number>
}

/** One distinct object (file content) of a bundle. */
export interface BundleObject {
  hash: string
  size: number
}

const HEX64 = /^[0-9a-f]{64}$/

export function chunkCount (size: number, chunkSize: number = CHUNK_SIZE_BYTES): number {
  return Math.ceil(size / chunkSize)
}

/** The distinct objects a bundle names (several paths may share one). */
export function bundleObjects (bundle: Pick<BundleManifest, 'entries'> & Partial<Pick<BundleManifest, 'objectSizes'>>): BundleObject[] {
  const objects = new Map<string, number>()
  for (const entry of bundle.entries) {
    if (entry.type === 'F') objects.set(entry.checksum, bundle.objectSizes?.get(entry.checksum) ?? entry.size)
  }
  return [...objects].map(([hash, size]) => ({ hash, size })).sort((a, b) => a.hash < b.hash ? -1 : 1)
}

/**
 * The objects whose size some entry does not state (a symlink's entry carries the link's own
 * size, as snapdir writes it). Entries from the tree walk carry `objectSize` for links; an
 * entry without it states its object's size.
 */
function linkedObjectSizes (entries: readonly ManifestEntry[]): Map<string, number> {
  const sizes = new Map<string, number>()
  for (const entry of entries) if (entry.type === 'F' && entry.objectSize !== undefined) sizes.set(entry.checksum, entry.objectSize)
  for (const entry of entries) if (entry.type === 'F' && !sizes.has(entry.checksum)) sizes.set(entry.checksum, entry.size)
  const differing = new Map<string, number>()
  for (const entry of entries) {
    const size = sizes.get(entry.checksum)
    if (entry.type === 'F' && size !== undefined && size !== entry.size) differing.set(entry.checksum, size)
  }
  return differing
}

/**
 * The chunk hashes of one object. An object of one chunk or less is its own single chunk,
 * so its snapdir checksum doubles as the chunk hash; the empty object has no chunks.
 */
export function chunkHashes (bundle: BundleManifest, object: BundleObject): string[] {
  if (object.size === 0) return []
  if (object.size <= bundle.chunkSize) return [object.hash]
  const table = bundle.chunkTables.get(object.hash)
  if (table === undefined) throw new BundleManifestError(`object ${object.hash} has no chunk table`)
  return table
}

export function createBundleManifest (entries: ManifestEntry[], chunkTables: Map<string, string[]>, chunkSize: number = CHUNK_SIZE_BYTES): BundleManifest {
  const manifestText = formatManifest(entries)
  const bundle: BundleManifest = {
    version: BUNDLE_FORMAT_VERSION, chunkSize, manifestText, entries: parseManifest(manifestText), chunkTables: new Map(), objectSizes: linkedObjectSizes(entries),
  }
  for (const object of bundleObjects(bundle)) {
    if (object.size <= chunkSize) continue
    const table = chunkTables.get(object.hash)
    if (table === undefined) throw new BundleManifestError(`object ${object.hash} (${object.size} bytes) needs a chunk table`)
    bundle.chunkTables.set(object.hash, table)
  }
  checkObjectSizes(bundle)
  checkChunkTables(bundle)
  return bundle
}

/**
 * The canonical encoding (docs/architecture.md, "Bundle manifest"): text, so a person can
 * read it with `cat`, and only one byte string per bundle, so the ID is well defined.
 *
 *   shoal-bundle 1\n
 *   chunk-size 1048576\n
 *   chunked N\n
 *   <object> <chunk 0> <chunk 1> …\n      N lines, objects in ascending hex order
 *   sized M\n                             only when M > 0 (a tree with symlinks to files)
 *   <object> <size>\n                      M lines, objects in ascending hex order
 *   manifest\n
 *   <snapdir manifest text>
 *
 * The `sized` section is left out when empty, so a tree without links keeps the ID it had
 * before the section existed.
 */
export function encodeBundleManifest (bundle: BundleManifest): Buffer {
  const objects = [...bundle.chunkTables.keys()].sort()
  const sized = [...bundle.objectSizes.keys()].sort()
  const lines = [
    `shoal-bundle ${bundle.version}`,
    `chunk-size ${bundle.chunkSize}`,
    `chunked ${objects.length}`,
    ...objects.map(o => [o, ...(bundle.chunkTables.get(o) ?? [])].join(' ')),
    ...(sized.length === 0 ? [] : [`sized ${sized.length}`, ...sized.map(o => `${o} ${bundle.objectSizes.get(o) ?? 0}`)]),
    'manifest',
  ]
  return Buffer.from(lines.join('\n') + '\n' + bundle.manifestText)
}

export function bundleIdOf (encoded: Uint8Array): string {
  return blake3Hex(encoded)
}

/**
 * Decodes bytes from anywhere. With `expectedId`, bytes that do not hash to it are refused
 * before they are parsed. Non-canonical bytes are refused, so one ID means one manifest.
 */
export function decodeBundleManifest (encoded: Uint8Array, options: { expectedId?: string } = {}): BundleManifest {
  if (options.expectedId !== undefined) {
    const actual = bundleIdOf(encoded)
    if (actual !== options.expectedId) throw new BundleIdMismatchError(options.expectedId, actual)
  }
  if (encoded.byteLength > MAX_MANIFEST_BYTES * 2) throw new BundleManifestError(`it is larger than ${MAX_MANIFEST_BYTES * 2} bytes`)
  const text = Buffer.from(encoded).toString('utf8')
  const header = readHeader(text)
  let bundle: BundleManifest
  try {
    const entries = parseManifest(header.manifestText)
    checkDirectoryChecksums(entries)
    if (formatManifest(entries) !== header.manifestText) throw new BundleManifestError('its snapdir manifest is not in canonical form (sorted, no comments or blank lines)')
    bundle = { version: header.version, chunkSize: header.chunkSize, manifestText: header.manifestText, entries, chunkTables: header.chunkTables, objectSizes: header.objectSizes }
  } catch (err) {
    throw new BundleManifestError((err as Error).message, { cause: err })
  }
  checkObjectSizes(bundle)
  checkChunkTables(bundle)
  if (!encodeBundleManifest(bundle).equals(Buffer.from(encoded))) throw new BundleManifestError('it is not in canonical form')
  return bundle
}

interface Header { version: number, chunkSize: number, chunkTables: Map<string, string[]>, objectSizes: Map<string, number>, manifestText: string }

function readHeader (text: string): Header {
  let offset = 0
  const nextLine = (): string => {
    const end = text.indexOf('\n', offset)
    if (end < 0) throw new BundleManifestError('it ends inside its header')
    const line = text.slice(offset, end)
    offset = end + 1
    return line
  }
  const version = numberAfter(nextLine(), 'shoal-bundle')
  if (version !== BUNDLE_FORMAT_VERSION) throw new BundleManifestError(`format version ${version} is not supported (this shoal reads ${BUNDLE_FORMAT_VERSION}); upgrade shoal`)
  const chunkSize = numberAfter(nextLine(), 'chunk-size')
  if (chunkSize !== CHUNK_SIZE_BYTES) throw new BundleManifestError(`chunk size ${chunkSize} is not ${CHUNK_SIZE_BYTES}`)
  const count = numberAfter(nextLine(), 'chunked')
  const chunkTables = new Map<string, string[]>()
  for (let i = 0; i < count; i++) {
    const [object, ...chunks] = nextLine().split(' ')
    if (object === undefined || !HEX64.test(object) || !chunks.every(c => HEX64.test(c))) throw new BundleManifestError(`chunk table line ${i + 1} is malformed`)
    chunkTables.set(object, chunks)
  }
  const objectSizes = new Map<string, number>()
  let line = nextLine()
  if (line.startsWith('sized ')) {
    const sized = numberAfter(line, 'sized')
    for (let i = 0; i < sized; i++) {
      const match = /^([0-9a-f]{64}) (0|[1-9][0-9]{0,15})$/.exec(nextLine())
      if (match?.[1] === undefined || match[2] === undefined || !Number.isSafeInteger(Number(match[2]))) throw new BundleManifestError(`size line ${i + 1} is malformed`)
      objectSizes.set(match[1], Number(match[2]))
    }
    line = nextLine()
  }
  if (line !== 'manifest') throw new BundleManifestError('the "manifest" line is missing')
  return { version, chunkSize, chunkTables, objectSizes, manifestText: text.slice(offset) }
}

function numberAfter (line: string, keyword: string): number {
  const match = new RegExp(`^${keyword} (0|[1-9][0-9]{0,12})$`).exec(line)
  if (match?.[1] === undefined) throw new BundleManifestError(`expected "${keyword} <number>", found ${JSON.stringify(line.slice(0, 80))}`)
  return Number(match[1])
}

/**
 * One size per object: entries that disagree need a size line (a symlink's entry carries the
 * link's size), and a size line is only there when some entry disagrees with it.
 */
function checkObjectSizes (bundle: BundleManifest): void {
  const stated = new Map<string, Set<number>>()
  for (const entry of bundle.entries) {
    if (entry.type !== 'F') continue
    const sizes = stated.get(entry.checksum) ?? new Set()
    sizes.add(entry.size)
    stated.set(entry.checksum, sizes)
  }
  for (const [object, size] of bundle.objectSizes) {
    const sizes = stated.get(object)
    if (sizes === undefined) throw new BundleManifestError(`size line for ${object}, which no entry names`)
    if (sizes.size === 1 && sizes.has(size)) throw new BundleManifestError(`size line for ${object}, whose entries all state that size`)
  }
  for (const [object, sizes] of stated) {
    if (sizes.size > 1 && !bundle.objectSizes.has(object)) throw new BundleManifestError(`the entries of object ${object} state ${[...sizes].join(' and ')} bytes, and no size line says which is the object's`)
  }
}

/** Every object over one chunk has a table of the right length, and no table names anything else. */
function checkChunkTables (bundle: BundleManifest): void {
  const sizes = new Map(bundleObjects(bundle).map(o => [o.hash, o.size]))
  for (const [object, table] of bundle.chunkTables) {
    const size = sizes.get(object)
    if (size === undefined || size <= bundle.chunkSize) throw new BundleManifestError(`chunk table for ${object}, which is not an object over one chunk`)
    if (table.length !== chunkCount(size, bundle.chunkSize)) throw new BundleManifestError(`object ${object} of ${size} bytes needs ${chunkCount(size, bundle.chunkSize)} chunk hashes, the table has ${table.length}`)
  }
  for (const [object, size] of sizes) {
    if (size > bundle.chunkSize && !bundle.chunkTables.has(object)) throw new BundleManifestError(`object ${object} of ${size} bytes has no chunk table`)
  }
}
