import { createReadStream } from 'node:fs'
import { BucketError } from '../bucket/index.js'
import { createBlake3 } from '../hash/index.js'
import { bundleObjects, checkDirectoryChecksums, parseManifest } from '../manifest/index.js'
import { INGEST_BUFFER_BYTES, SYNC_OBJECT_CONCURRENCY } from './constants.js'
import { forEachLimited } from './slots.js'
import { requireSnapdirId, type SyncEndpoint } from './sync.js'
import type { BadObject, VerifyReport } from './verify.js'

/**
 * Re-hashes every object of one snapshot (or of every snapshot) in a file or bucket store,
 * reading each once, and reports bad and missing objects as `shoal verify` does for a data
 * dir (`bundles` counts snapshots). Nothing is changed: the store is someone else's.
 */
export async function verifySnapshots (from: Extract<SyncEndpoint, { kind: 'file' | 'bucket' }>, options: { id?: string, signal?: AbortSignal, onProgress?: (bytes: number) => void } = {}): Promise<VerifyReport> {
  const { signal } = options
  const ids = options.id !== undefined ? [requireSnapdirId(options.id)] : (await (from.kind === 'bucket' ? from.store.snapshots({ signal }) : from.store.snapshots())).map(s => s.id)
  const report: VerifyReport = { bundles: ids.length, objectsChecked: 0, bytesChecked: 0, bad: [], missing: [], ok: true }
  const verdicts = new Map<string, Promise<string | undefined>>()
  const badByObject = new Map<string, BadObject>()
  for (const id of ids) {
    const text = from.kind === 'bucket' ? await from.store.readManifest(id, { signal }) : await from.store.readManifest(id)
    const entries = parseManifest(text)
    checkDirectoryChecksums(entries)
    await forEachLimited(bundleObjects({ entries }), SYNC_OBJECT_CONCURRENCY, async object => {
      let verdict = verdicts.get(object.hash)
      if (verdict === undefined) {
        verdict = check(from, object.hash, object.size, report, options)
        verdicts.set(object.hash, verdict)
      }
      const why = await verdict
      if (why === undefined) return
      if (why === 'missing') {
        report.missing.push({ bundleId: id, object: object.hash })
        return
      }
      const bad = badByObject.get(object.hash) ?? { object: object.hash, why, usedBy: [] }
      bad.usedBy.push({ bundleId: id, paths: entries.filter(e => e.type === 'F' && e.checksum === object.hash).map(e => e.path) })
      badByObject.set(object.hash, bad)
    }, signal)
  }
  report.bad = [...badByObject.values()]
  report.ok = report.bad.length === 0 && report.missing.length === 0
  return report
}

async function check (from: Extract<SyncEndpoint, { kind: 'file' | 'bucket' }>, hash: string, size: number, report: VerifyReport, options: { signal?: AbortSignal, onProgress?: (bytes: number) => void }): Promise<string | undefined> {
  const source: AsyncIterable<Uint8Array> = from.kind === 'bucket'
    ? from.store.readObject(hash, { signal: options.signal })
    : createReadStream(from.store.objectPath(hash), { highWaterMark: INGEST_BUFFER_BYTES, signal: options.signal })
  const hasher = createBlake3()
  let read = 0
  try {
    for await (const chunk of source) {
      read += chunk.length
      // Past its size an object is wrong whatever follows: stop reading.
      if (read > size) return `holds more than its ${size} bytes`
      hasher.update(chunk)
      report.bytesChecked += chunk.length
      options.onProgress?.(report.bytesChecked)
    }
  } catch (err) {
    if ((err instanceof BucketError && err.code === 'BUCKET_KEY_NOT_FOUND') || (err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing'
    throw err
  }
  report.objectsChecked++
  if (read !== size) return `holds ${read} bytes, not ${size}`
  const actual = hasher.digestHex()
  return actual === hash ? undefined : `hashes to ${actual}`
}
