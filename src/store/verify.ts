import { chunkHashes } from '../manifest/index.js'
import { blake3Hex } from '../hash/index.js'
import { hashWholeFile } from './object-files.js'
import type { Store } from './store.js'

export interface BadObject {
  object: string
  why: string
  /** Paths in each bundle that name the object. */
  usedBy: Array<{ bundleId: string, paths: string[] }>
}

export interface VerifyReport {
  bundles: number
  objectsChecked: number
  bytesChecked: number
  bad: BadObject[]
  /** Objects a bundle names that are not (all) here. */
  missing: Array<{ bundleId: string, object: string }>
  ok: boolean
}

/**
 * Re-hashes every object (and every held chunk of partial objects) of one bundle or all,
 * and names each bad object with the bundles and paths it breaks.
 */
export async function verifyStore (store: Store, options: { bundleId?: string, signal?: AbortSignal, onProgress?: (bytes: number) => void } = {}): Promise<VerifyReport> {
  const ids = options.bundleId !== undefined ? [options.bundleId] : await store.bundleIds()
  const verdicts = new Map<string, string | undefined>()
  const report: VerifyReport = { bundles: ids.length, objectsChecked: 0, bytesChecked: 0, bad: [], missing: [], ok: true }
  const badByObject = new Map<string, BadObject>()
  for (const id of ids) {
    const loaded = await store.requireBundle(id)
    for (const [hash, size] of loaded.objectSizes) {
      if (!verdicts.has(hash)) {
        verdicts.set(hash, await checkObject(store, loaded.manifest, hash, size, report, options.signal))
        options.onProgress?.(report.bytesChecked)
      }
      const verdict = verdicts.get(hash)
      if (verdict === 'missing') report.missing.push({ bundleId: id, object: hash })
      else if (verdict !== undefined) {
        const bad = badByObject.get(hash) ?? { object: hash, why: verdict, usedBy: [] }
        bad.usedBy.push({ bundleId: id, paths: loaded.manifest.entries.filter(e => e.type === 'F' && e.checksum === hash).map(e => e.path) })
        badByObject.set(hash, bad)
      }
    }
  }
  report.bad = [...badByObject.values()]
  report.ok = report.bad.length === 0 && report.missing.length === 0
  return report
}

/** undefined when good, 'missing' when absent, else what is wrong. */
async function checkObject (store: Store, manifest: Parameters<typeof chunkHashes>[0], hash: string, size: number, report: VerifyReport, signal?: AbortSignal): Promise<string | undefined> {
  const state = await store.objectState(hash)
  if (state.state === 'missing') return 'missing'
  report.objectsChecked++
  if (state.state === 'complete') {
    const whole = await hashWholeFile(store.objectPath(hash), signal)
    report.bytesChecked += whole.size
    if (whole.size !== size) return `has ${whole.size} bytes, the manifest says ${size}`
    if (whole.checksum !== hash) return `hashes to ${whole.checksum}`
    return undefined
  }
  const expected = chunkHashes(manifest, { hash, size })
  const into = Buffer.allocUnsafe(store.chunkSize)
  for (let i = 0; i < state.bitmap.chunkCount; i++) {
    if (!state.bitmap.has(i)) continue
    const bytes = await store.readChunk(hash, i, { signal, into })
    report.bytesChecked += bytes.length
    if (blake3Hex(bytes) !== expected[i]) return `chunk ${i} of the partial object is corrupt`
  }
  return 'missing'
}
