import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { PassThrough } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { extractTree, packTreeEntries, treeEntries } from '../oci/index.js'
import { DaemonError, send, type DaemonApi } from './daemon-client.js'

export interface PushAnswer { id: string, snapdirId: string, refs: Array<{ ref: string, manifestDigest?: string }>, newObjects: number, newBytes: number }

/**
 * Sends what `shoal push PATH` names to the daemon as a stream: a directory as a tree tar, an
 * archive file as it is. The daemon never opens PATH itself: it may not see this filesystem
 * (its own mount namespace, another user, a container), and it must not read paths for others.
 */
export async function pushThroughDaemon (api: DaemonApi, path: string, refs: string[], signal: AbortSignal): Promise<PushAnswer> {
  const info = await stat(path)
  const kind = info.isDirectory() ? 'tree' : 'archive'
  if (!info.isDirectory() && !info.isFile()) throw new DaemonError('PUSH_UNSUPPORTED', `${path} is neither a directory nor an archive file`, 0)
  const query = new URLSearchParams({ kind })
  for (const ref of refs) query.append('ref', ref)
  const body = new PassThrough()
  // Packing runs beside the request; its failure (a file vanished) ends the request, so the
  // daemon sees a cut body and keeps nothing, and is reported here as the cause.
  const packed = kind === 'tree'
    ? packTreeEntries(treeEntries(path, signal), body, { signal }).then(() => undefined, (err: unknown) => err)
    : pipeline(createReadStream(path), body, { signal }).then(() => undefined, (err: unknown) => err)
  let status: number
  let text: string
  try {
    const response = await send(api, 'POST', `/api/v1/push?${query.toString()}`, { type: 'application/x-tar', stream: body }, signal)
    status = response.statusCode ?? 0
    text = await readText(response)
  } catch (err) {
    // The cause is what send() names: the pack's own failure (it fails the body, which ends
    // the request) or the lost connection, after which the pack fails only as an echo.
    body.destroy()
    await packed
    throw err
  }
  if (status >= 400) {
    // Refused before the whole push arrived (over the quota, a bad archive): the refusal is
    // the cause, not the pipe the daemon stops reading; stop packing and say why.
    body.destroy()
    await packed
  } else {
    const packError = await packed
    if (packError !== undefined) throw packError
  }
  return parseAnswer<PushAnswer>(status, text)
}

/**
 * Receives a bundle from the daemon and writes it here: DEST ending in `.tar` as the archive
 * (appearing only when complete), anything else as a new or empty directory, with the same
 * checks as `shoal export` on a store (no path leaves DEST, nothing half-written kept).
 */
export async function receiveBundle (api: DaemonApi, idOrRef: string, dest: string, signal: AbortSignal): Promise<string> {
  const format = dest.endsWith('.tar') ? 'archive' : 'tree'
  const response = await send(api, 'GET', `/api/v1/export/${encodeURIComponent(idOrRef)}?format=${format}`, undefined, signal)
  if ((response.statusCode ?? 0) >= 400) parseAnswer(response.statusCode ?? 0, await readText(response))
  const id = String(response.headers['shoal-bundle-id'] ?? idOrRef)
  if (format === 'tree') {
    await extractTree(response, dest, { signal })
    return id
  }
  const staged = `${dest}.partial-${process.pid}`
  try {
    await pipeline(response, createWriteStream(staged, { flags: 'wx' }), { signal })
    await rename(staged, dest)
  } catch (err) {
    await rm(staged, { force: true })
    throw err
  }
  return id
}

async function readText (stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = []
  for await (const piece of stream) parts.push(piece as Buffer)
  return Buffer.concat(parts).toString()
}

function parseAnswer<T> (status: number, text: string): T {
  let value: unknown
  try { value = JSON.parse(text) } catch { value = undefined }
  if (status >= 400) {
    const error = (value as { error?: { code?: string, message?: string } } | undefined)?.error
    throw new DaemonError(error?.code ?? 'DAEMON_ERROR', error?.message ?? `the daemon answered ${status}`, status)
  }
  return value as T
}
