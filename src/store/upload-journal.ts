import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** One part that the bucket took: its ETag for completion, its BLAKE3 to know it is the same bytes. */
export interface LandedPart { etag: string, blake3: string, size: number }

/** An unfinished multipart upload, remembered so a rerun sends only the parts that had not landed. */
export interface UploadState {
  uploadId: string
  /** The object being uploaded and its size: a journal for other bytes is never reused. */
  hash: string
  size: number
  partSize: number
  parts: Record<number, LandedPart>
}

/**
 * Multipart uploads in progress, one small JSON file per destination key, rewritten (write,
 * rename) after each part lands. A kill -9 loses at most the parts in flight. The bucket's own
 * ListParts is not used: not every S3-compatible server has it (s3rver does not), and a part's
 * ETag alone does not say it holds the verified bytes, which the BLAKE3 recorded here does.
 */
export class UploadJournal {
  private readonly writes = new Map<string, Promise<void>>()

  constructor (readonly dir: string) {}

  private pathOf (where: string): string {
    return join(this.dir, createHash('sha256').update(where).digest('hex').slice(0, 32) + '.json')
  }

  async load (where: string): Promise<UploadState | undefined> {
    try {
      const state = JSON.parse(await readFile(this.pathOf(where), 'utf8')) as UploadState
      return typeof state.uploadId === 'string' && typeof state.parts === 'object' ? state : undefined
    } catch (err) {
      // A journal torn by a crash is as good as none: the upload starts over.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return undefined
      throw err
    }
  }

  /** Saves in call order per key, each save whole (rename), so the newest state wins. */
  async save (where: string, state: UploadState): Promise<void> {
    const text = JSON.stringify(state)
    const previous = this.writes.get(where) ?? Promise.resolve()
    const next = previous.catch(() => {}).then(async () => {
      await mkdir(this.dir, { recursive: true })
      const path = this.pathOf(where)
      const temp = `${path}.${process.pid}.tmp`
      await writeFile(temp, text)
      await rename(temp, path)
    })
    this.writes.set(where, next)
    try {
      await next
    } finally {
      if (this.writes.get(where) === next) this.writes.delete(where)
    }
  }

  async remove (where: string): Promise<void> {
    await this.writes.get(where)?.catch(() => {})
    await rm(this.pathOf(where), { force: true })
  }
}
