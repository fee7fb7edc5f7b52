import { stat } from 'node:fs/promises'
import {
  bundleOfTree, exportTree, pushPath, pushTreeTo, syncSnapshot, verifySnapshots, verifyStore, type VerifyReport,
} from '../store/index.js'
import { printJson, printLine, withStore, type CommandContext } from './context.js'
import { EXIT_FAILURE, EXIT_OK } from './exit-codes.js'
import { ProgressBar } from './progress.js'
import { withEndpoints } from './sync.js'
import { UsageError } from './usage-error.js'

/**
 * `--store STORE` forms of push, pull, verify and revisions, as snapdir has them: STORE is
 * `file://PATH`, `s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX` or a shoal data dir.
 */

/** `shoal push --store STORE DIR`: a directory straight to the store; prints its snapdir ID. */
export async function pushToStore (path: string, spec: string, context: CommandContext): Promise<number> {
  return await withEndpoints(context, [spec], async ([opened]) => {
    const { endpoint } = opened!
    if (endpoint.kind === 'shoal') {
      const result = await pushPath(endpoint.store, path, { signal: context.signal })
      if (context.json) printJson(context, { id: result.bundleId, newObjects: result.newObjects, newBytes: result.newBytes })
      else printLine(context, result.bundleId)
      return EXIT_OK
    }
    if (!(await stat(path)).isDirectory()) throw new UsageError(`push --store ${spec} takes a directory; push an image archive into a data dir first, then \`shoal sync\` it`)
    const { bundle } = await bundleOfTree(path, { signal: context.signal })
    const bar = new ProgressBar(context.stderr, 'push', undefined, !context.json)
    const result = await pushTreeTo(path, bundle, endpoint, { signal: context.signal, onProgress: bytes => { bar.update(bytes) } })
    bar.finish()
    if (context.json) printJson(context, result)
    else printLine(context, result.id)
    return EXIT_OK
  }, [true])
}

/** `shoal pull --store STORE --id ID [DIR]`: into this data dir (and checked out to DIR). */
export async function pullFromStore (spec: string, id: string, dir: string | undefined, context: CommandContext): Promise<number> {
  return await withEndpoints(context, [spec], async ([opened]) => {
    const bar = new ProgressBar(context.stderr, 'pull', undefined, !context.json)
    const result = await withStore(context, async store => {
      const synced = await syncSnapshot(id, opened!.endpoint, { kind: 'shoal', store }, { signal: context.signal, onProgress: bytes => { bar.update(bytes) } })
      if (dir !== undefined) await exportTree(store, synced.id, dir, { signal: context.signal })
      return synced
    })
    bar.finish()
    if (context.json) printJson(context, result)
    else printLine(context, result.id)
    return EXIT_OK
  })
}

/** `shoal verify --store STORE [ID]`: re-hashes what the store holds; changes nothing. */
export async function verifyInStore (spec: string, id: string | undefined, context: CommandContext): Promise<number> {
  const bar = new ProgressBar(context.stderr, 'verify', undefined, !context.json)
  const report = await withEndpoints(context, [spec], async ([opened]) => {
    const { endpoint } = opened!
    const onProgress = (bytes: number): void => { bar.update(bytes) }
    if (endpoint.kind !== 'shoal') return await verifySnapshots(endpoint, { id, signal: context.signal, onProgress })
    const bundleId = id !== undefined ? await endpoint.store.resolve(id) : undefined
    return await verifyStore(endpoint.store, { bundleId, signal: context.signal, onProgress })
  })
  bar.finish()
  printVerifyReport(context, report, 'snapshot')
  return report.ok ? EXIT_OK : EXIT_FAILURE
}

/** `shoal revisions --store STORE`: the snapshots in a store, oldest first. */
export async function revisionsInStore (spec: string, context: CommandContext): Promise<number> {
  const found = await withEndpoints(context, [spec], async ([opened]) => {
    const { endpoint } = opened!
    if (endpoint.kind === 'shoal') return (await endpoint.store.revisions()).map(r => ({ id: r.bundleId, at: new Date(r.at), ref: r.ref }))
    const snapshots = endpoint.kind === 'bucket' ? await endpoint.store.snapshots({ signal: context.signal }) : await endpoint.store.snapshots()
    return snapshots.map(s => ({ id: s.id, at: s.at, ref: undefined }))
  })
  if (context.json) printJson(context, found.map(f => ({ id: f.id, at: f.at.toISOString(), location: spec, ...(f.ref !== undefined ? { ref: f.ref } : {}) })))
  else for (const f of found) printLine(context, `${f.at.toISOString()}  ${f.id}${f.ref !== undefined ? `  ${f.ref}` : ''}`)
  return EXIT_OK
}

export function printVerifyReport (context: CommandContext, report: VerifyReport, unit: 'bundle' | 'snapshot'): void {
  if (context.json) {
    printJson(context, report)
    return
  }
  for (const bad of report.bad) {
    printLine(context, `BAD ${bad.object}: ${bad.why}`)
    for (const use of bad.usedBy) printLine(context, `  breaks ${unit} ${use.bundleId} at ${use.paths.join(', ')}`)
  }
  for (const missing of report.missing) printLine(context, `MISSING ${missing.object} (${unit} ${missing.bundleId})`)
  printLine(context, `${report.ok ? 'ok' : 'FAILED'}: ${report.bundles} ${unit}(s), ${report.objectsChecked} object(s), ${report.bytesChecked} bytes checked, ${report.bad.length} bad, ${report.missing.length} missing`)
}
