import type { ServerResponse } from 'node:http'
import { describeError } from '../errors/index.js'
import type { ControlApiComponents, PullEvent } from './control-types.js'

/** A progress line at most this often per pull: a terminal needs no more. */
const PULL_PROGRESS_INTERVAL_MS = 250

/** `POST /pull`: streams NDJSON progress lines while the swarm fetches, then one `done` or `error` line. */
export async function streamPull ({ store, swarm, logger }: ControlApiComponents, ref: string, res: ServerResponse, signal: AbortSignal): Promise<void> {
  const id = /^[0-9a-f]{64}$/.test(ref) ? ref : await store.resolve(ref)
  logger?.info('pull asked for', { ref, bundleId: id })
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' })
  const write = (event: PullEvent): void => { res.write(JSON.stringify(event) + '\n') }
  write({ type: 'resolved', id })
  const started = Date.now()
  let lastProgressAt = 0
  // In use while it arrives: the quota keeper evicts others, never the bundle being pulled.
  const release = store.useBundle(id)
  try {
    await swarm.pull(id, {
      signal,
      // A person waits at `shoal pull`: an ID no neighbour and no provider record knows is
      // answered after one search, and what is being asked is shown meanwhile.
      searchOnce: true,
      onSearch: search => { write({ type: 'searching', ...search }) },
      onProgress: progress => {
        const now = Date.now()
        if (now - lastProgressAt < PULL_PROGRESS_INTERVAL_MS) return
        lastProgressAt = now
        write({ type: 'progress', presentBytes: progress.presentBytes, totalBytes: progress.totalBytes, peers: progress.peers })
      },
    })
    await store.touch(id)
    write({ type: 'done', id, seconds: (Date.now() - started) / 1000 })
    logger?.info('pull done', { bundleId: id, seconds: (Date.now() - started) / 1000 })
  } catch (err) {
    const { code, message } = describeError(err)
    // An error without a code is the pull's own failure, not an internal fault of the API.
    write({ type: 'error', code: (err as { code?: unknown }).code === undefined ? 'PULL_FAILED' : code, message })
    logger?.info('pull failed', { bundleId: id, code, message })
  } finally {
    release()
  }
  res.end()
}
