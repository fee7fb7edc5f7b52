import { openEndpoint, syncSnapshot, type Store } from '../store/index.js'
import type { Logger } from './logger.js'

export interface SeedInit {
  /** Where bucket credentials and endpoints are read from (the AWS CLI's variables). */
  env: NodeJS.ProcessEnv
  logger: Logger
  signal: AbortSignal
}

/**
 * Seeds this node from a store (`s3://…`, `gs://…`, `file://…`): each snapshot named (or, with
 * none named, every snapshot the store holds) is synced into the node's store, verified on the
 * way, and so announced to the fleet like a push (the store's 'bundle:added' event). Runs beside
 * the daemon rather than before it: a gateway serves what it has while a large seed arrives.
 * A snapshot that fails is logged with its code and the others go on.
 */
export async function seedFromStore (store: Store, spec: string, ids: readonly string[] | undefined, init: SeedInit): Promise<{ seeded: number, failed: number }> {
  const { logger, signal } = init
  const counts = { seeded: 0, failed: 0 }
  let source
  try {
    source = await openEndpoint(spec, { env: init.env, signal, create: false })
  } catch (err) {
    logger.error('seed: cannot open the store', { store: spec, code: (err as { code?: string }).code, error: (err as Error).message })
    return { seeded: 0, failed: 1 }
  }
  try {
    const { endpoint } = source
    const wanted = ids !== undefined && ids.length > 0
      ? ids
      : endpoint.kind === 'bucket' ? (await endpoint.store.snapshots({ signal })).map(s => s.id)
        : endpoint.kind === 'file' ? (await endpoint.store.snapshots()).map(s => s.id)
          : await endpoint.store.bundleIds()
    logger.info('seed: starting', { store: source.name, snapshots: wanted.length })
    for (const id of wanted) {
      signal.throwIfAborted()
      try {
        const result = await syncSnapshot(id, endpoint, { kind: 'shoal', store }, { signal })
        counts.seeded++
        logger.info('seed: snapshot in the store', { store: source.name, id, bundleId: result.id, copiedObjects: result.copiedObjects, copiedBytes: result.copiedBytes, skippedObjects: result.skippedObjects })
      } catch (err) {
        if (signal.aborted) throw err
        counts.failed++
        logger.error('seed: snapshot refused', { store: source.name, id, code: (err as { code?: string }).code, error: (err as Error).message })
      }
    }
    logger.info('seed: done', { store: source.name, ...counts })
    return counts
  } finally {
    await source.close()
  }
}
