import { createWriteStream } from 'node:fs'
import { chmod, copyFile, mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'
import { createSha256 } from '../hash/index.js'
import { openArchive } from './archive-source.js'
import { LAYOUT_DIR_MODE, LAYOUT_FILE_MODE } from './constants.js'
import { BLOB_DIR, isSha256Hex } from './digest.js'
import { convertDockerSave, DOCKER_SAVE_MANIFEST, type ArchiveFile } from './docker-save.js'
import {
  ArchiveCorruptError, ArchiveDestinationNotEmptyError, ArchiveDuplicateEntryError,
  ArchiveTruncatedError, ArchiveUnsupportedError, OciError,
} from './errors.js'
import { OCI_INDEX_FILE_NAME, OCI_LAYOUT_FILE_NAME } from './media-types.js'
import { normalizeEntryPath, resolveSymlinkTarget } from './tar-path.js'

export interface ExtractArchiveResult {
  /** `oci-layout`: skopeo oci-archive, ctr export, docker save ≥ 25; `docker-save`: the legacy format, converted. */
  format: 'oci-layout' | 'docker-save'
  /**
   * sha256 hex of every file written, by layout-relative path (`index.json`,
   * `blobs/sha256/<hex>`); pass it to `validateLayout` as `knownSha256`.
   */
  sha256: Map<string, string>
}

/** Where non-layout entries (docker save's layer.tar, manifest.json, …) wait until we know the archive's format. */
const STAGING_DIR = '.shoal-staging'
/** A tar ends with two zero blocks (POSIX ustar); without them the archive was cut short. */
const END_OF_ARCHIVE_BYTES = 1024
const TAR_BLOCK_BYTES = 512
const MAX_LINK_HOPS = 16

/** tar-stream does not export its entry type. */
type TarEntry = tar.Extract extends AsyncIterable<infer T> ? T : never

interface PendingLink { path: string, target: string }

interface ImportState {
  archivePath: string
  destDir: string
  signal: AbortSignal | undefined
  /** Every file entry by normalized path; links point at their target's record. */
  files: Map<string, ArchiveFile>
  links: PendingLink[]
  seen: Set<string>
  stagedCount: number
  currentEntry: string | undefined
  /** Offset in the tar stream just past the last entry's data and padding. */
  lastEntryEnd: number
}

/**
 * Streams an image archive into `destDir` as an OCI image layout. Reads plain or
 * gzip'ed tars (sniffed by magic bytes) written by `skopeo copy … oci-archive:`,
 * `ctr image export`, and `docker save` (both the OCI-layout form of Docker ≥ 25
 * and the legacy `manifest.json` + `layer.tar` form, which is converted: see
 * docker-save.ts). Every entry is piped to its file and hashed on the way; no blob
 * is held in memory.
 *
 * Normalization, so that one image gives one tree however it arrived:
 * - kept: `oci-layout`, `index.json`, `blobs/sha256/<hex>`; dropped: everything
 *   else (ctr's and Docker's docker-compat `manifest.json`, `repositories`);
 * - files 0644, directories (destDir included) 0755, whatever the archive or umask say;
 * - entry spellings `./x`, `x`, `x/` are one path.
 * Refused: absolute paths, `..` segments, NUL, device and fifo entries, a path
 * twice, entries under `blobs/` other than `blobs/sha256/<64 hex>`. Symlinks and
 * hardlinks are accepted only when they resolve, inside the archive, to a regular
 * file entry (docker save links shared layers); they become copies of that file.
 *
 * `destDir` must be absent or empty. On failure everything written is removed
 * (destDir too, and any parents this call created). The result is not validated: call
 * `validateLayout(destDir, { knownSha256: result.sha256 })` next.
 */
export async function extractArchive (archivePath: string, destDir: string, options: { signal?: AbortSignal } = {}): Promise<ExtractArchiveResult> {
  const { signal } = options
  const createdDir = await prepareDestination(destDir)
  try {
    const state: ImportState = {
      archivePath, destDir, signal, files: new Map(), links: [], seen: new Set(), stagedCount: 0, currentEntry: undefined, lastEntryEnd: 0,
    }
    await readEntries(state)
    resolveLinks(state)
    const result = await finishLayout(state)
    await rm(join(destDir, STAGING_DIR), { recursive: true, force: true })
    return result
  } catch (err) {
    await removeWritten(destDir, createdDir)
    throw err
  }
}

/** Returns the top-most directory this call created (to undo it), if any. */
async function prepareDestination (destDir: string): Promise<string | undefined> {
  const created = await mkdir(destDir, { recursive: true })
  if (created === undefined && (await readdir(destDir)).length > 0) throw new ArchiveDestinationNotEmptyError(destDir)
  for (const dir of [destDir, join(destDir, 'blobs'), join(destDir, BLOB_DIR), join(destDir, STAGING_DIR)]) {
    await mkdir(dir, { recursive: true })
    await chmod(dir, LAYOUT_DIR_MODE)
  }
  return created
}

async function removeWritten (destDir: string, createdDir: string | undefined): Promise<void> {
  if (createdDir !== undefined) {
    await rm(createdDir, { recursive: true, force: true })
    return
  }
  // destDir was empty when we started, so everything in it is ours.
  for (const name of await readdir(destDir).catch(() => [])) await rm(join(destDir, name), { recursive: true, force: true })
}

async function readEntries (state: ImportState): Promise<void> {
  const source = await openArchive(state.archivePath, { signal: state.signal })
  const counter = new ByteCounter()
  const extract = tar.extract()
  // The feeding pipeline's error also reaches the entry loop (extract is destroyed with it); keep it
  // as a value so it is never an unhandled rejection, and classify whichever comes first.
  const fed = pipeline([...source.streams, counter, extract], { signal: state.signal }).then(() => undefined, (err: unknown) => err)
  try {
    for await (const entry of extract) {
      await readEntry(state, entry)
    }
  } catch (err) {
    extract.destroy()
    const feedError = await fed
    // Our refusals come from the loop; when a stream failed, the loop sees only an echo
    // ("premature close") and the pipeline's error is the cause.
    throw classifyStreamError(state, err instanceof OciError || feedError === undefined ? err : feedError)
  }
  const feedError = await fed
  if (feedError !== undefined) throw classifyStreamError(state, feedError)
  checkEndOfArchive(state, counter.bytes)
}

async function readEntry (state: ImportState, entry: TarEntry): Promise<void> {
  state.signal?.throwIfAborted()
  const { header } = entry
  state.currentEntry = header.name
  const path = normalizeEntryPath(header.name)
  const size = header.size ?? 0
  const type = header.type ?? 'file'
  if (type === 'directory') {
    checkBlobArea(state, path, 'directory')
  } else if (type === 'file' || type === 'contiguous-file') {
    claimPath(state, path)
    checkBlobArea(state, path, 'file')
    await writeFileEntry(state, entry, path, size)
  } else if (type === 'symlink' || type === 'link') {
    claimPath(state, path)
    checkBlobArea(state, path, 'file')
    const linkname = header.linkname ?? ''
    // A symlink target is relative to the link's directory; a hardlink's to the archive root.
    const target = type === 'symlink' ? resolveSymlinkTarget(path, linkname) : normalizeEntryPath(linkname)
    state.links.push({ path, target })
  } else {
    throw new ArchiveUnsupportedError(`archive entry ${JSON.stringify(header.name)} is a ${type}; image archives hold only files, directories and links`)
  }
  state.lastEntryEnd = entryDataOffset(entry) + Math.ceil(size / TAR_BLOCK_BYTES) * TAR_BLOCK_BYTES
}

function claimPath (state: ImportState, path: string): void {
  if (path === '' || state.seen.has(path)) throw new ArchiveDuplicateEntryError(path === '' ? './' : path)
  state.seen.add(path)
}

/** The layout's own names must be what the OCI spec says, so nothing odd lands in blobs/. */
function checkBlobArea (state: ImportState, path: string, kind: 'file' | 'directory'): void {
  if (kind === 'directory') {
    if (path.startsWith('blobs/') && path !== BLOB_DIR) throw unsupportedBlobPath(state, path)
    return
  }
  if (path === 'blobs' || path === BLOB_DIR) throw unsupportedBlobPath(state, path)
  if (path.startsWith('blobs/') && !(path.startsWith(`${BLOB_DIR}/`) && isSha256Hex(path.slice(BLOB_DIR.length + 1)))) throw unsupportedBlobPath(state, path)
}

function unsupportedBlobPath (state: ImportState, path: string): Error {
  return new ArchiveUnsupportedError(`${state.archivePath}: entry ${JSON.stringify(path)} is not a sha256 blob; shoal imports only blobs/sha256/<64 hex> under blobs/ (other digest algorithms are not supported)`)
}

function isLayoutPath (path: string): boolean {
  return path === OCI_LAYOUT_FILE_NAME || path === OCI_INDEX_FILE_NAME || path.startsWith(`${BLOB_DIR}/`)
}

async function writeFileEntry (state: ImportState, entry: TarEntry, path: string, size: number): Promise<void> {
  const location = isLayoutPath(path) ? join(state.destDir, path) : join(state.destDir, STAGING_DIR, String(state.stagedCount++))
  const hasher = createSha256()
  let written = 0
  let head = Buffer.alloc(0)
  await pipeline(async function * () {
    for await (const piece of entry) {
      const bytes = piece as Buffer
      hasher.update(bytes)
      written += bytes.length
      if (head.length < 2) head = Buffer.concat([head, bytes.subarray(0, 2)])
      yield bytes
    }
  }, createWriteStream(location, { flags: 'wx', mode: LAYOUT_FILE_MODE }), { signal: state.signal })
  if (written !== size) throw truncated(state, `entry ${JSON.stringify(path)} holds ${written} of its ${size} bytes`)
  await chmod(location, LAYOUT_FILE_MODE)
  state.files.set(path, { location, sha256: hasher.digest('hex'), size, gzip: head[0] === 0x1f && head[1] === 0x8b })
}

/** Links are resolved after the last entry: `docker save` may list a link before its target. */
function resolveLinks (state: ImportState): void {
  const pending = new Map(state.links.map(link => [link.path, link.target]))
  for (const link of state.links) {
    let target = link.target
    for (let hops = 0; !state.files.has(target); hops++) {
      const next = pending.get(target)
      if (next === undefined || hops >= MAX_LINK_HOPS) {
        throw new ArchiveUnsupportedError(`${state.archivePath}: link ${JSON.stringify(link.path)} points to ${JSON.stringify(link.target)}, which is not a file in the archive; re-export the image`)
      }
      target = next
    }
    const file = state.files.get(target)
    // Shared record: when docker-save conversion moves the target into blobs/, the link follows.
    if (file !== undefined) state.files.set(link.path, file)
  }
}

async function finishLayout (state: ImportState): Promise<ExtractArchiveResult> {
  await materializeLayoutLinks(state)
  if (state.files.has(OCI_LAYOUT_FILE_NAME)) {
    if (!state.files.has(OCI_INDEX_FILE_NAME)) {
      throw new ArchiveUnsupportedError(`${state.archivePath} has an oci-layout entry but no index.json; it is not a complete OCI image layout: re-export the image`)
    }
    const sha256 = new Map<string, string>()
    for (const [path, file] of state.files) if (isLayoutPath(path)) sha256.set(path, file.sha256)
    return { format: 'oci-layout', sha256 }
  }
  if (state.files.has(DOCKER_SAVE_MANIFEST)) {
    return { format: 'docker-save', sha256: await convertDockerSave(state.destDir, state.files, { signal: state.signal }) }
  }
  throw new ArchiveUnsupportedError(`${state.archivePath} has neither oci-layout nor manifest.json; it is not an image archive from skopeo, ctr or docker save`)
}

/** A link at a layout path becomes a copy of its target, so the layout is plain files. */
async function materializeLayoutLinks (state: ImportState): Promise<void> {
  for (const link of state.links) {
    const file = state.files.get(link.path)
    if (file === undefined || !isLayoutPath(link.path)) continue
    const location = join(state.destDir, link.path)
    await copyFile(file.location, location)
    await chmod(location, LAYOUT_FILE_MODE)
    state.files.set(link.path, { ...file, location })
  }
}

/**
 * tar-stream accepts a stream that stops cleanly between two entries; only the
 * missing end-of-archive blocks tell that such an archive was cut short.
 */
function checkEndOfArchive (state: ImportState, totalBytes: number): void {
  if (state.currentEntry === undefined) {
    throw totalBytes === 0
      ? new ArchiveTruncatedError(`${state.archivePath} is empty (no tar data); re-export the image`)
      : new ArchiveUnsupportedError(`${state.archivePath} is a tar with no entries; it is not an image archive`)
  }
  if (totalBytes < state.lastEntryEnd + END_OF_ARCHIVE_BYTES) {
    throw truncated(state, 'the end-of-archive marker is missing')
  }
}

function truncated (state: ImportState, detail: string, cause?: unknown): ArchiveTruncatedError {
  const where = state.currentEntry === undefined ? 'before its first entry' : `at entry ${JSON.stringify(state.currentEntry)}`
  return new ArchiveTruncatedError(`${state.archivePath} ends early ${where} (${detail}); the file was cut short (interrupted copy or export?): re-export it`, { cause })
}

/** Maps tar-stream's and zlib's plain errors to the module's typed ones. */
function classifyStreamError (state: ImportState, err: unknown): unknown {
  if (err instanceof OciError || !(err instanceof Error)) return err
  const code = (err as NodeJS.ErrnoException).code
  if (err.message === 'Unexpected end of data' || code === 'Z_BUF_ERROR') return truncated(state, err.message, err)
  if (err.message.startsWith('Invalid tar header') || code === 'Z_DATA_ERROR') {
    const where = state.currentEntry === undefined ? 'at its start' : `after entry ${JSON.stringify(state.currentEntry)}`
    return new ArchiveCorruptError(`${state.archivePath} is not a readable tar ${where} (${err.message}); check that it is an image archive and re-export it`, { cause: err })
  }
  return err
}

/** tar-stream gives the offset of an entry's header block; its data follows that block. */
function entryDataOffset (entry: TarEntry): number {
  return entry.offset + TAR_BLOCK_BYTES
}

class ByteCounter extends Transform {
  bytes = 0

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    callback(null, chunk)
  }
}
