import { open, rm } from 'node:fs/promises'
import { createSha256 } from '../hash/index.js'
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
 * Streams a blob's response body into a new staging file, hashing it on the way, never
 * holding more than one network read in memory. The file holds exactly the bytes that were
 * hashed; it is removed on any failure, so a caller only ever sees a complete, verified file.
 */
export async function downloadToFile (response: Response, path: string, download: BlobDownload): Promise<number> {
  const limit = download.size ?? download.maxBytes
  const declared = Number(response.headers.get('content-length'))
  if (Number.isFinite(declared) && response.headers.has('content-length') && declared > limit) {
    await response.body?.cancel()
    throw new UpstreamTooLargeError(`${download.what} (${declared} bytes declared)`, limit)
  }
  const file = await open(path, 'wx', 0o600)
  const sha256 = createSha256()
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
      for await (const piece of body) {
        size += piece.byteLength
        if (size > limit) throw new UpstreamTooLargeError(download.what, limit)
        clearTimeout(timer)
        sha256.update(piece)
        await writeAll(file, piece)
        download.onBytes?.(piece.byteLength)
        arm()
      }
    }
    if (download.size !== undefined && size !== download.size) throw new UpstreamUnavailableError(`${download.what}: the upstream sent ${size} bytes, the descriptor says ${download.size}`)
    const actual = sha256.digest('hex')
    if (actual !== download.sha256) throw new UpstreamDigestMismatchError(`sha256:${download.sha256}`, `sha256:${actual}`, download.what)
    return size
  } catch (err) {
    await file.close().catch(() => undefined)
    await rm(path, { force: true })
    if (download.idle.signal.aborted) throw download.idle.signal.reason
    download.signal.throwIfAborted()
    // Ours and the file system's errors say what happened; anything else is the body breaking off.
    if (err instanceof UpstreamError || (err as NodeJS.ErrnoException).errno !== undefined) throw err
    throw new UpstreamUnavailableError(`${download.what}: the upstream's response broke off (${(err as Error).message})`, { cause: err })
  } finally {
    clearTimeout(timer)
    await file.close().catch(() => undefined)
  }
}

async function writeAll (file: import('node:fs/promises').FileHandle, data: Uint8Array): Promise<void> {
  let written = 0
  while (written < data.byteLength) {
    const { bytesWritten } = await file.write(data, written, data.byteLength - written)
    written += bytesWritten
  }
}
