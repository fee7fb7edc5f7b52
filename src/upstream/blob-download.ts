import { StoreError, type GrowingFile, type Store } from '../store/index.js'
import { bodyBatches } from './body-batches.js'
import { UPSTREAM_WRITE_BATCH_BYTES, UPSTREAM_WRITE_BATCH_WAIT_MS } from './constants.js'
import { UpstreamDigestMismatchError, UpstreamError, UpstreamTooLargeError, UpstreamUnavailableError } from './errors.js'

export interface BlobDownload {
  /** Lowercase hex sha256 the bytes must have. */
  sha256: string
  /** The size the descriptor gives, when one does; more or fewer bytes is a failure. */
  size?: number
  maxBytes: number
  idleTimeoutMs: number
  /** Aborts the download; the idle timer aborts `idle` (which the response's fetch listens to). */
  signal: AbortSignal
  idle: AbortController
  onBytes?: (bytes: number) => void
  what: string
}

/**
 * Streams a blob's response body into a new staging file of the store (a GrowingFile others may follow
 * while it fills, which hashes what it writes), in writes of about UPSTREAM_WRITE_BATCH_BYTES
 * (body-batches.ts): never more than that and one network read in memory.
 * The file holds exactly the bytes that were hashed; it is completed only when size and
 * sha256 check out and removed (its readers failed) on any failure, so nobody ever sees a
 * complete file that is not the blob. `created` hears of the file as soon as it exists.
 */
export async function downloadToFile (response: Response, store: Pick<Store, 'createStagingFile'>, download: BlobDownload, created?: (file: GrowingFile) => void): Promise<GrowingFile> {
  const limit = download.size ?? download.maxBytes
  const declared = Number(response.headers.get('content-length'))
  const hasDeclared = Number.isFinite(declared) && response.headers.has('content-length')
  if (hasDeclared && declared > limit) {
    await response.body?.cancel()
    throw new UpstreamTooLargeError(`${download.what} (${declared} bytes declared)`, limit)
  }
  if (hasDeclared && download.size !== undefined && declared !== download.size) {
    await response.body?.cancel()
    throw new UpstreamUnavailableError(`${download.what}: the upstream declares ${declared} bytes, the descriptor says ${download.size}`)
  }
  let file: GrowingFile
  try {
    file = await store.createStagingFile('upstream', download.size ?? (hasDeclared ? declared : undefined), download.what)
  } catch (err) {
    // No room for it (or no staging file): the body is not read.
    await response.body?.cancel()
    throw err
  }
  created?.(file)
  let size = 0
  let timer: NodeJS.Timeout | undefined
  const arm = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => { download.idle.abort(new UpstreamUnavailableError(`${download.what}: the upstream sent nothing for ${download.idleTimeoutMs} ms`)) }, download.idleTimeoutMs)
  }
  try {
    arm()
    const body = response.body
    if (body !== null) {
      for await (const pieces of bodyBatches(body, { bytes: UPSTREAM_WRITE_BATCH_BYTES, waitMs: UPSTREAM_WRITE_BATCH_WAIT_MS })) {
        let bytes = 0
        for (const piece of pieces) bytes += piece.byteLength
        size += bytes
        if (size > limit || (file.size !== undefined && size > file.size)) throw new UpstreamTooLargeError(download.what, file.size ?? limit, boundOf(download, file))
        clearTimeout(timer)
        await file.append(pieces)
        download.onBytes?.(bytes)
        arm()
      }
    }
    if (file.size !== undefined && size !== file.size) throw new UpstreamUnavailableError(`${download.what}: the upstream sent ${size} bytes, ${download.size === undefined ? 'its Content-Length said' : 'the descriptor says'} ${file.size}`)
    // The file hashed what it wrote (BLAKE3 too): the caller makes it an object on those digests.
    const actual = (await file.finish()).sha256
    if (actual !== download.sha256) throw new UpstreamDigestMismatchError(`sha256:${download.sha256}`, `sha256:${actual}`, download.what)
    file.complete()
    return file
  } catch (err) {
    const failure = translate(err, download)
    await file.fail(failure)
    throw failure
  } finally {
    clearTimeout(timer)
  }
}

/** What set the size a body may not pass: the descriptor, the upstream's own Content-Length, or (undefined) this node's limit. */
function boundOf (download: BlobDownload, file: GrowingFile): string | undefined {
  if (download.size !== undefined) return 'the manifest\'s descriptor'
  return file.size === undefined ? undefined : 'its Content-Length'
}

function translate (err: unknown, download: BlobDownload): Error {
  if (download.idle.signal.aborted) return asError(download.idle.signal.reason)
  if (download.signal.aborted) return asError(download.signal.reason)
  // Ours and the file system's errors say what happened; anything else is the body breaking off.
  if (err instanceof UpstreamError || err instanceof StoreError || (err as NodeJS.ErrnoException).errno !== undefined) return err as Error
  return new UpstreamUnavailableError(`${download.what}: the upstream's response broke off (${(err as Error).message})`, { cause: err })
}

function asError (reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason))
}
