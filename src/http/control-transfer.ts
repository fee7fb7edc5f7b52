import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { PassThrough, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ArchiveTooLargeError, extractTree } from '../oci/index.js'
import { pushPath, pushTree, requireCompleteBundle, streamBundle, type PushResult, type Store } from '../store/index.js'
import { SOCKET_IDLE_TIMEOUT_MS } from './constants.js'

/**
 * Mode bits the unpacked files keep: a client's setuid/setgid bits never land on files the
 * daemon owns. The bundle still records them (pushTree's `modes`), as a push of the client's
 * own tree would, and an export or pull writes them back on the client's side.
 */
const PUSHED_MODE_MASK = 0o1777

export type PushKind = 'tree' | 'archive'

/**
 * `POST /api/v1/push`: the CLI sends what it pushes — a tree tar of a directory, or an image
 * archive as it is — and the daemon unpacks or stores it in its own staging area, then pushes
 * that. No path of the client's is ever opened here (the CLI may see a filesystem the daemon
 * cannot, or one it must not read for a stranger).
 */
export async function receivePush (store: Store, req: IncomingMessage, kind: PushKind, options: { refs: string[], signal: AbortSignal, maxBytes?: number }): Promise<PushResult> {
  const { signal } = options
  // A client that stops sending holds a staging area and a store lock: drop it when idle.
  req.setTimeout(SOCKET_IDLE_TIMEOUT_MS, () => { req.destroy(new Error(`the push sent nothing for ${SOCKET_IDLE_TIMEOUT_MS / 1000} s`)) })
  // Read through a stand-in: a refusal (past maxBytes, a bad tar) ends the stand-in, not the
  // request, so the answer still reaches a client that is sending (endRefused).
  const body = req.pipe(new PassThrough())
  const staging = await store.makeStagingDir('received')
  try {
    if (kind === 'tree') {
      const tree = join(staging, 'tree')
      const extracted = await extractTree(body, tree, { signal, symlinks: true, maxBytes: options.maxBytes, modeMask: PUSHED_MODE_MASK })
      // The unpacked files are ours: move them in instead of copying them again.
      return await pushTree(store, tree, { refs: options.refs, signal, move: true, modes: extracted.maskedModes })
    }
    const archive = join(staging, 'archive.tar')
    await pipeline(body, byteLimit(options.maxBytes), createWriteStream(archive, { flags: 'wx', mode: 0o600 }), { signal })
    return await pushPath(store, archive, { refs: options.refs, signal })
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}

/** `GET /api/v1/export/ID?format=tree|archive`: the bundle as a stream the CLI writes where it likes. */
export async function sendBundle (store: Store, res: ServerResponse, id: string, format: 'tree' | 'archive', signal: AbortSignal): Promise<void> {
  await requireCompleteBundle(store, id)
  // A client is reading it: the quota must not evict it under the stream.
  const release = store.useBundle(id)
  try {
    res.writeHead(200, { 'content-type': 'application/x-tar', 'cache-control': 'no-store', 'shoal-bundle-id': id })
    await streamBundle(store, id, format, res, { signal })
  } finally {
    release()
  }
}

function byteLimit (maxBytes: number | undefined): Transform {
  let seen = 0
  return new Transform({
    transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      seen += chunk.length
      if (maxBytes !== undefined && seen > maxBytes) callback(new ArchiveTooLargeError(maxBytes))
      else callback(null, chunk)
    },
  })
}
