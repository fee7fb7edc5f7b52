import type { FileHandle } from 'node:fs/promises'
import { ArrivingObject } from './arriving-object.js'
import { BodyWriter } from './body-writer.js'
import { CaughtChunks } from './caught-chunks.js'
import { KEPT_VERIFIED_CHUNKS, READ_HIGH_WATER_MARK_BYTES, SEND_BUFFERS } from './constants.js'
import { RegistryError } from './errors.js'
import { parseDigest, type RepositoryName, type Sha256Digest } from './names.js'
import { bundleHolding, useForReading, type ObjectHolder } from './object-lookup.js'
import { contentRangeOf, parseRange, type ByteRange } from './range.js'
import { requestedName, type Registry } from './registry.js'
import { ResponseWaits } from './response-waits.js'
import type { BlobSource, FailedSource, IncomingBlob } from './sources.js'
import { namespaceHeader, type Headers, type RequestContext } from './respond.js'

/**
 * `GET|HEAD /v2/<name>/blobs/<digest>`. Objects are shared by the whole store, so any held
 * blob is served whatever repository names it (containerd verifies the digest itself).
 * A complete object streams from its file; one still arriving streams chunk by chunk as
 * the blob source fills it. HEAD answers only for blobs held whole: a pusher that checks
 * for a blob must not skip uploading one we merely know of.
 */
export async function getBlob (ctx: RequestContext, registry: Registry, rawName: string, rawDigest: string): Promise<void> {
  const name = requestedName(ctx, registry, rawName)
  const digest = parseDigest(rawDigest)
  const headers: Headers = {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest.digest,
    'Accept-Ranges': 'bytes',
    ...namespaceHeader(name),
  }
  let object = await registry.store.objectBySha256(digest.hex)
  // Sources on GET only: a pusher's HEAD asks whether to upload, not for a download.
  if (object === undefined && !ctx.head && registry.sources !== undefined) {
    const asked = performance.now()
    const located = await registry.sources.locate(name, digest, { signal: ctx.signal, manifest: false })
    registry.logger?.debug('blob not indexed here: asked the sources', { digest: digest.digest, found: located !== false, streaming: typeof located === 'object', ms: Math.round(performance.now() - asked) })
    if (typeof located === 'object') {
      await sendIncoming(ctx, registry, located, headers)
      return
    }
    if (located) object = await registry.store.objectBySha256(digest.hex)
  }
  if (object === undefined) {
    if (!ctx.head) registry.logger?.info('blob not found', { name: name.path, digest: digest.digest, reason: 'neither here nor in the fleet nor at an upstream' })
    throw blobUnknown(name, digest)
  }
  // Looked up once: the quota's hold and an arriving blob's source both need it.
  const holder = await bundleHolding(registry.store, object, name)
  // The quota must not evict the image under a client that reads it request by request.
  const release = holder === undefined ? () => {} : await useForReading(registry.store, object, name, holder.bundleId)
  try {
    const failed = await sendObject(ctx, registry, { name, digest, object, headers, holder })
    if (failed !== undefined) await sendFromNextSource(ctx, registry, { name, digest, headers }, failed)
  } finally {
    release()
  }
}

/**
 * The blob from the sources after one that failed before the first byte (the composer's order:
 * the fleet's pull-through, then this node's upstream), or a 404 naming the reason when none
 * has it. Before, that failure was the 404, and containerd went to the far registry itself.
 */
async function sendFromNextSource (ctx: RequestContext, registry: Registry, blob: Pick<ArrivingBlob, 'name' | 'digest' | 'headers'>, failed: FailedSource): Promise<void> {
  const { name, digest, headers } = blob
  const next = registry.sources === undefined ? false : await registry.sources.locate(name, digest, { signal: ctx.signal, manifest: false, failed })
  if (typeof next === 'object') {
    await sendIncoming(ctx, registry, next, headers)
    return
  }
  // Whole by now: another request's stream from the fleet finished while this one asked.
  const object = next ? await registry.store.objectBySha256(digest.hex) : undefined
  const file = object === undefined ? undefined : await registry.store.openObject(object)
  if (file === undefined) {
    // Info, with the reason: a 404 sends containerd to its next host (issue 8).
    registry.logger?.info('blob not found: it could not be fetched from the fleet, and no later source has it', { name: name.path, digest: digest.digest, failed: failed.source, reason: failed.reason })
    throw blobUnknown(name, digest, 'could not be fetched from the fleet')
  }
  try {
    await sendFile(ctx, file, headers)
  } finally {
    await file.close()
  }
}

/** Sends a known object from its file or as it arrives; says which source failed when nothing was sent. */
async function sendObject (ctx: RequestContext, registry: Registry, blob: Omit<ArrivingBlob, 'holder' | 'source'> & { holder: ObjectHolder | undefined }): Promise<FailedSource | undefined> {
  const { name, digest, object, headers, holder } = blob
  const file = await registry.store.openObject(object)
  if (file !== undefined) {
    try {
      await sendFile(ctx, file, headers)
    } finally {
      await file.close()
    }
    return
  }
  const source = registry.blobSource
  if (ctx.head || source === undefined || holder === undefined) throw blobUnknown(name, digest)
  return await sendArriving(ctx, registry, { name, digest, object, holder, headers, source })
}

async function sendFile (ctx: RequestContext, file: FileHandle, headers: Headers): Promise<void> {
  const { size } = await file.stat()
  const range = parseRange(ctx.req.headers.range, size)
  ctx.res.writeHead(range === undefined ? 200 : 206, { ...headers, ...lengthHeaders(range, size) })
  if (ctx.head) {
    ctx.res.end()
    return
  }
  const start = range?.start ?? 0
  const end = range?.end ?? size - 1
  if (end < start) {
    ctx.res.end()
    return
  }
  const body = new BodyWriter(ctx.res, SEND_BUFFERS, READ_HIGH_WATER_MARK_BYTES)
  await sendFileBytes(body, file, start, end + 1, ctx.signal)
  await body.end(ctx.signal)
}

/** Bytes [from, to) of an open file into the body, a buffer at a time, read while the ones before are written. */
async function sendFileBytes (body: BodyWriter, file: FileHandle, from: number, to: number, signal: AbortSignal): Promise<void> {
  for (let offset = from; offset < to;) {
    const bytesRead = await body.sendRead(async buffer => (await file.read(buffer, 0, Math.min(buffer.byteLength, to - offset), offset)).bytesRead, signal)
    // A file shorter than it said: the client gets a short body (the server cuts it), never a hang.
    if (bytesRead === 0) throw new Error(`the file ended at byte ${offset} of ${to}`)
    offset += bytesRead
  }
}

/**
 * Streams a blob as a pull-through brings it (see IncomingBlob): its last byte only once the
 * whole blob was verified, so a source that fails cuts the connection (the server destroys a
 * response that fails after its head) and containerd never completes a damaged body. Closes it.
 */
async function sendIncoming (ctx: RequestContext, registry: Registry, blob: IncomingBlob, headers: Headers): Promise<void> {
  try {
    await sendIncomingBytes(ctx, registry, blob, headers)
  } finally {
    await blob.close()
  }
}

async function sendIncomingBytes (ctx: RequestContext, registry: Registry, blob: IncomingBlob, headers: Headers): Promise<void> {
  const range = blob.size === undefined ? undefined : parseRange(ctx.req.headers.range, blob.size)
  ctx.res.writeHead(range === undefined ? 200 : 206, blob.size === undefined ? headers : { ...headers, ...lengthHeaders(range, blob.size) })
  // Through the response's few reused buffers, as a whole object is sent: a fresh 1 MiB buffer
  // per read was an mmap and 256 page faults each (GROWING_PIECE_BYTES), 512 per layer.
  const body = new BodyWriter(ctx.res, SEND_BUFFERS, READ_HIGH_WATER_MARK_BYTES)
  const end = range === undefined ? undefined : range.end + 1
  for (let position = range?.start ?? 0; ;) {
    const bytesRead = await body.sendRead(async buffer => await blob.readInto(buffer, { position, end, stallMs: registry.chunkStallTimeoutMs, signal: ctx.signal }), ctx.signal)
    if (bytesRead === 0) break
    position += bytesRead
  }
  await body.end(ctx.signal)
}

interface ArrivingBlob {
  name: RepositoryName
  digest: Sha256Digest
  object: string
  holder: ObjectHolder
  headers: Headers
  source: BlobSource
}

/**
 * Streams an object that is still arriving, in order, as its chunks are stored. Until the
 * first needed chunk is here nothing is sent, so a source that fails (or stays silent) is
 * said to the caller (which asks the next sources) and nothing of the response has gone;
 * after that the response keeps flowing, and if the source fails mid-way the connection is
 * cut so the client retries with Range (and that retry can go to the next sources).
 */
async function sendArriving (ctx: RequestContext, registry: Registry, blob: ArrivingBlob): Promise<FailedSource | undefined> {
  const { store } = registry
  const size = blob.holder.size
  const range = parseRange(ctx.req.headers.range, size)
  const first = range?.start ?? 0
  const last = range?.end ?? size - 1
  const chunkSize = store.chunkSize
  // Before the pull starts: no room for what is missing of it is a 503 naming the disk (containerd
  // tries its next host), not a 200 cut when the disk fills.
  await store.requireRoomFor(blob.object, size, `blob ${blob.digest.digest}`)
  const arriving = new ArrivingObject({ store, source: blob.source, bundleId: blob.holder.bundleId, object: blob.object, signal: ctx.signal })
  // Stage times for the first-byte breakdown in docs/architecture.md (debug level).
  const asked = performance.now()
  registry.logger?.debug('blob still arriving: asked the source for it', { digest: blob.digest.digest, object: blob.object, bundleId: blob.holder.bundleId })
  // The store's aligned buffers, where it has them to lend: its direct reads land in them.
  const bufferBytes = Math.max(chunkSize, READ_HIGH_WATER_MARK_BYTES)
  const body = new BodyWriter(ctx.res, SEND_BUFFERS, bufferBytes, bufferBytes === chunkSize ? store : undefined)
  const waits = new ResponseWaits()
  const firstChunk = Math.floor(first / chunkSize)
  // Verified chunks are caught from the start, the first too: a blob of one chunk (a config) went
  // out only once written and read back (60-74 ms through a busy edge).
  const caught = new CaughtChunks(body, firstChunk, SEND_BUFFERS - 1, KEPT_VERIFIED_CHUNKS)
  arriving.catcher = (index, bytes, keep) => caught.offer(index, bytes, keep)
  try {
    try {
      await arriving.waitForChunk(firstChunk, registry.firstChunkTimeoutMs, ctx.signal, () => caught.has(firstChunk))
      registry.logger?.debug('blob still arriving: first chunk here, body starts', { digest: blob.digest.digest, waitedMs: Math.round(performance.now() - asked) })
    } catch (err) {
      ctx.signal.throwIfAborted()
      const reason = `the pull of bundle ${blob.holder.bundleId} brought no chunk in ${Math.round(performance.now() - asked)} ms: ${err instanceof Error ? err.message : String(err)}`
      return { source: 'fleet-bundle', reason }
    }
    ctx.res.writeHead(range === undefined ? 200 : 206, { ...blob.headers, ...lengthHeaders(range, size) })
    await sendArrivingBytes(store, arriving, body, { object: blob.object, first, last, stallMs: registry.chunkStallTimeoutMs, signal: ctx.signal }, waits, caught)
    await waits.time('socket', body.end(ctx.signal))
    registry.logger?.debug('blob still arriving: body sent', { digest: blob.digest.digest, ms: Math.round(performance.now() - asked), ...waits.summary(), socketIdleMs: Math.round(body.idleMs) })
    return undefined
  } finally {
    arriving.catcher = undefined
    caught.clear()
    body.release()
    arriving.close()
  }
}

interface ArrivingRange {
  object: string
  first: number
  last: number
  stallMs: number
  signal: AbortSignal
}

/**
 * Bytes `first..last` of an arriving object into the body, in order: chunk by chunk as they
 * are stored, each read into a buffer the socket gave back, while the chunks before it are
 * written. Once the whole object is here too, through the store's chunk reads (its kept
 * handle): an object the pull wrote past the page cache is read that way as well
 * (object-readers.ts `readDirect`), where a read of its file filled the page cache with the
 * rest of the layer after all, on a VM the dearest part of the edge's work. One read at a
 * time: three in flight took the reads' time off the response and did not make containerd
 * faster (docs/architecture.md, "the cpu4 lane"; through the CRI too, "Reads ahead through the
 * CRI, tried again and not taken").
 */
async function sendArrivingBytes (store: Registry['store'], arriving: ArrivingObject, body: BodyWriter, range: ArrivingRange, waits: ResponseWaits, caught: CaughtChunks): Promise<void> {
  const chunkSize = store.chunkSize
  for (let index = Math.floor(range.first / chunkSize); index * chunkSize <= range.last; index++) {
    const offset = index * chunkSize
    const from = Math.max(range.first, offset)
    // A chunk caught as it passed its hash check goes out from that copy: no commit wait, no read back.
    let early = caught.take(index)
    if (early === undefined) {
      await waits.time('swarm', arriving.waitForChunk(index, range.stallMs, range.signal, () => caught.has(index)))
      early = caught.take(index)
    }
    if (early !== undefined) {
      waits.sentFromVerified()
      body.send(early.bytes.subarray(from - offset, range.last - offset + 1), early.buffer, early.release)
      continue
    }
    const buffer = await waits.time('socket', body.buffer(range.signal))
    let bytes: Buffer
    try {
      bytes = await waits.time('read', arriving.readChunk(index, range.signal, buffer))
    } catch (err) {
      body.giveBack(buffer)
      throw err
    }
    const part = bytes.subarray(from - offset, range.last - offset + 1)
    // A read that could not use the buffer (from a partial file closed meanwhile) brought its own
    // memory. A lent buffer shares its ArrayBuffer with others: the offset tells them apart.
    if (bytes.buffer === buffer.buffer && bytes.byteOffset === buffer.byteOffset) {
      body.send(part, buffer)
    } else {
      body.giveBack(buffer)
      body.send(part)
    }
  }
}

function lengthHeaders (range: ByteRange | undefined, size: number): Headers {
  if (range === undefined) return { 'Content-Length': size }
  return { 'Content-Length': range.end - range.start + 1, 'Content-Range': contentRangeOf(range, size) }
}

function blobUnknown (name: RepositoryName, digest: Sha256Digest, why = 'is not held here'): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', `blob ${digest.digest} ${why}`, {
    detail: { digest: digest.digest },
    headers: namespaceHeader(name),
  })
}
