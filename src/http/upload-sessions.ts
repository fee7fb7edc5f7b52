import { randomUUID } from 'node:crypto'
import { open, rm, type FileHandle } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { createSha256, type Sha256Hasher } from '../hash/index.js'
import type { RecentMap } from '../recent/index.js'
import { BlobDigestMismatchError, ingestBlobFile, type IngestedBlob, type Store } from '../store/index.js'
import { RegistryError } from './errors.js'
import type { Sha256Digest } from './names.js'
import { consumeBody } from './request-body.js'

export interface UploadSessionsInit {
  maxSessions: number
  idleMs: number
  maxBlobBytes: number
  /** The store's quota, to say so when it is what limits a blob. */
  quotaBytes?: number
  bodyIdleTimeoutMs: number
  /** Where an upload's chunk tables are left for the manifest push (Registry.chunkTables). */
  chunkTables: RecentMap<string, string[]>
}

/**
 * One blob upload in progress (distribution-spec "Pushing blobs"): a staging file under the
 * store's tmp/ (wiped when the store opens, so a crash leaves nothing behind), the bytes
 * received so far, and a sha256 fed in the same order, so the digest is known the moment
 * the client says it is done.
 */
export class UploadSession {
  offset = 0
  busy = false
  readonly sha256: Sha256Hasher = createSha256()
  timer: NodeJS.Timeout | undefined

  constructor (readonly id: string, readonly repository: string, readonly path: string) {}

  /** distribution-spec: `Range: 0-<last byte received>` ("0-0" before any byte, as Docker's registry says it). */
  get range (): string { return `0-${Math.max(0, this.offset - 1)}` }
}

// Session ids are ours (randomUUID); anything else cannot name a session.
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** The upload sessions of one API, with their limits: count, size, idle time. */
export class UploadSessions {
  private readonly sessions = new Map<string, UploadSession>()

  constructor (private readonly store: Store, private readonly init: UploadSessionsInit) {}

  async start (repository: string): Promise<UploadSession> {
    if (this.sessions.size >= this.init.maxSessions) throw new RegistryError('TOOMANYREQUESTS', `${this.init.maxSessions} uploads are already open here; finish or cancel some first`)
    const id = randomUUID()
    const session = new UploadSession(id, repository, this.store.stagingPath('upload', id))
    await (await open(session.path, 'wx', 0o600)).close()
    this.sessions.set(id, session)
    this.touch(session)
    return session
  }

  /** The session `id` of this repository; an id from another repository is as unknown as a made-up one. */
  get (id: string, repository: string): UploadSession {
    const session = SESSION_ID.test(id) ? this.sessions.get(id) : undefined
    if (session === undefined || session.repository !== repository) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'no such upload here (it finished, was cancelled, or timed out); start the upload again', { detail: { session: id.slice(0, 64) } })
    }
    return session
  }

  /**
   * Appends a request body at the session's offset. Bytes are written, then hashed, then
   * counted, so an interrupted request leaves a consistent session the client can resume
   * from the `Range` a status request reports.
   */
  async append (session: UploadSession, req: IncomingMessage, signal: AbortSignal): Promise<void> {
    if (session.busy) throw new RegistryError('BLOB_UPLOAD_INVALID', 'another request is writing to this upload; chunks must be sent one after the other')
    session.busy = true
    const file = await open(session.path, 'r+')
    try {
      const limits = {
        maxBytes: this.init.maxBlobBytes - session.offset,
        idleTimeoutMs: this.init.bodyIdleTimeoutMs,
        signal,
        tooLarge: () => new RegistryError('SIZE_INVALID', this.init.maxBlobBytes === this.init.quotaBytes
          ? `a blob may be at most ${this.init.maxBlobBytes} bytes here, this node's quota (--quota); nothing was kept — raise the quota, or push to a node with more room`
          : `a blob may be at most ${this.init.maxBlobBytes} bytes here`),
      }
      await consumeBody(req, limits, async piece => {
        await writeAt(file, piece, session.offset)
        session.sha256.update(piece)
        session.offset += piece.length
      })
    } catch (err) {
      // A refused body ends the upload (distribution-spec: a 4xx other than 416 fails it);
      // a client that went away may come back and resume.
      if (err instanceof RegistryError) await this.drop(session)
      throw err
    } finally {
      session.busy = false
      await file.close()
      this.touch(session)
    }
  }

  /**
   * Completes an upload: the digest the client names must be the sha256 of what it sent,
   * else nothing is stored. The bytes are then hashed once more as they become an object.
   */
  async finish (session: UploadSession, digest: Sha256Digest, signal: AbortSignal): Promise<IngestedBlob> {
    if (session.busy) throw new RegistryError('BLOB_UPLOAD_INVALID', 'another request is writing to this upload')
    this.forget(session)
    const actual = session.sha256.digest('hex')
    try {
      if (actual !== digest.hex) throw new BlobDigestMismatchError(digest.hex, actual)
      const blob = await ingestBlobFile(this.store, session.path, { sha256: digest.hex, signal })
      if (blob.chunkHashes !== undefined) this.init.chunkTables.set(blob.object, blob.chunkHashes)
      return blob
    } catch (err) {
      await this.drop(session)
      if (err instanceof BlobDigestMismatchError) {
        throw new RegistryError('DIGEST_INVALID', `the uploaded bytes hash to sha256:${err.actual}, not ${digest.digest}; nothing was stored`, { detail: { digest: digest.digest, actual: `sha256:${err.actual}` }, cause: err })
      }
      throw err
    }
  }

  async cancel (session: UploadSession): Promise<void> {
    await this.drop(session)
  }

  /** Drops every session and its staging file (the API is closing). */
  async close (): Promise<void> {
    for (const session of [...this.sessions.values()]) await this.drop(session)
  }

  private touch (session: UploadSession): void {
    clearTimeout(session.timer)
    if (!this.sessions.has(session.id)) return
    // A failed removal leaves a staging file the store wipes at its next open; it must not
    // become an unhandled rejection, which would end the daemon.
    session.timer = setTimeout(() => { if (!session.busy) this.drop(session).catch(() => undefined) }, this.init.idleMs)
    // An idle upload must not keep the process alive on its own.
    session.timer.unref()
  }

  private forget (session: UploadSession): void {
    clearTimeout(session.timer)
    this.sessions.delete(session.id)
  }

  private async drop (session: UploadSession): Promise<void> {
    this.forget(session)
    await rm(session.path, { force: true })
  }
}

async function writeAt (file: FileHandle, data: Buffer, position: number): Promise<void> {
  let written = 0
  while (written < data.length) {
    const { bytesWritten } = await file.write(data, written, data.length - written, position + written)
    written += bytesWritten
  }
}
