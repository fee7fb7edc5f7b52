// The least a Node edge and holder must do for containerd's pull of a big layer from a neighbour
// (issue 8): bench-containerd's `floor` scenario (docs/architecture.md, "The least a Node edge and
// holder must do, measured through containerd"). No libp2p, LevelDB or swarm; what the design
// asks of the bytes is kept (encrypted on the wire, verified, stored, served):
//   holder  one node process holding the layer's file (its store copy), read with O_DIRECT into
//           page-aligned memory as the daemon reads an object a pull wrote (object-readers.ts
//           `readDirect`, Store.lendReadBuffer), and sent over TLS 1.3 with a pre-shared key and
//           AES-128-GCM in 1 MiB writes, as the data lane does (src/swarm/lane*.ts)
//   edge    one node process with a node:http server containerd pulls from (hosts.toml's host);
//           everything but the layer's GET is relayed to docker-registry. The layer's GET: the
//           TLS lane to the holder, read with net's `onread` straight into 1 MiB page-aligned
//           chunk buffers (lane-transport.ts `place`), each chunk checked against its BLAKE3 from
//           the holder's list (the bundle manifest's chunk table), the object's whole BLAKE3 fed
//           as chunks come (prefix-hash.ts), each chunk written with O_DIRECT to a staging file
//           under group fdatasyncs (partial-objects.ts) and the file renamed into place once the
//           whole hash matched, and each chunk written to the response with backpressure. No
//           sha256: the daemon's edge computes none on this path (the bundle's paths give it).
// Both run as the daemon runs: the node flags and malloc environment of bin/shoal.js's first line.
// Variants take one part away at a time (FloorPart, the edge's `without`), to see what each costs:
// `tls` (plain TCP read with onread into the same chunk buffers: no cipher on either side),
// `hash` (no BLAKE3 on the edge), `store` (no file, writes or fdatasync on the edge).
//
//   startFloorHolder / startFloorEdge (the bench's side), or as a child:
//   node --import tsx scripts/bench-floor.ts holder|edge 'JSON'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { constants } from 'node:fs'
import { copyFile, mkdir, open, rename } from 'node:fs/promises'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect as netConnect, createServer as netServer, type AddressInfo, type OnReadOpts, type Socket } from 'node:net'
import { join } from 'node:path'
import { pipeline } from 'node:stream'
import { connect as tlsConnect, createServer as tlsServer, type ConnectionOptions } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { blake3Hex, createBlake3 } from '../src/hash/index.js'
import { CHUNK_SIZE_BYTES } from '../src/manifest/constants.js'
// The store's own aligned memory, without the store (and LevelDB) around it.
import { AlignedBuffers, roundUpToBlock } from '../src/store/direct-io.js'
import { shebangEnv, shebangNodeFlags } from '../test/helpers/shoal-cli.js'

const CHUNK_BYTES = CHUNK_SIZE_BYTES
const HASH_BYTES = 32
/** The daemon keeps at most this many chunks waiting for the store (MAX_BUFFERED_CHUNKS). */
const EDGE_CHUNK_BUFFERS = 16
/** The holder's aligned read buffers: one read ahead of the socket, the rest lent to TLS writes. */
const HOLDER_READ_BUFFERS = 8
const SUITE = 'TLS_AES_128_GCM_SHA256'
/** A lane that moves no byte for this long is cut (the daemon's lanes have their own deadlines). */
const IDLE_TIMEOUT_MS = 30_000
const START_TIMEOUT_MS = 60_000
/** The ask: the layer's digest and a newline, at most this long. */
const MAX_ASK_BYTES = 100

export interface FloorLayer { digest: string, size: number }
/** The lane's pre-shared key (the daemon's lanes agree a one-time one over libp2p), hex. */
export interface FloorKey { identity: string, key: string }
/** What a variant leaves out: the lane's TLS, the edge's BLAKE3, the edge's store. */
export type FloorPart = 'tls' | 'hash' | 'store'
export interface FloorProcess {
  child: ChildProcess
  /** The holder's TLS lane port, or the edge's registry `127.0.0.1:PORT`. */
  address: string
  /** The holder's plain TCP lane port (the `tls` variant's). */
  plainPort?: string
  logs: () => string
  /** SIGKILL and wait, as the bench ends a daemon. */
  kill: () => Promise<void>
}

interface HolderArgs { dir: string, blobPath: string, layer: FloorLayer, psk: FloorKey }
interface EdgeArgs { dir: string, holderPort: number, holderPlainPort?: number, registry: string, layer: FloorLayer, psk: FloorKey, without?: FloorPart[] }

export function floorKey (): FloorKey {
  return { identity: randomBytes(8).toString('hex'), key: randomBytes(32).toString('hex') }
}

/** Starts the floor holder: copies `blobPath` into `dir` (its store) and serves it once listening. */
export async function startFloorHolder (args: HolderArgs): Promise<FloorProcess> {
  return await startRole('holder', args)
}

/** Starts a fresh floor edge whose store is `dir`, relaying to the registry at `registry` (HOST:PORT). */
export async function startFloorEdge (args: EdgeArgs): Promise<FloorProcess> {
  return await startRole('edge', args)
}

async function startRole (role: 'holder' | 'edge', args: HolderArgs | EdgeArgs): Promise<FloorProcess> {
  const argv = [...shebangNodeFlags(), '--import', 'tsx', fileURLToPath(import.meta.url), role, JSON.stringify(args)]
  // From the repository's root, where `--import tsx` is found whatever the caller's directory.
  const child = spawn(process.execPath, argv, { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...shebangEnv() } })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const exited = once(child, 'exit')
  const started = await new Promise<{ address: string, plainPort?: string }>((resolve, reject) => {
    let stdout = ''
    const timer = setTimeout(() => { reject(new Error(`the floor ${role} did not start within ${START_TIMEOUT_MS} ms:\n${stderr}`)) }, START_TIMEOUT_MS)
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      stdout += s
      const newline = stdout.indexOf('\n')
      if (newline < 0) return
      clearTimeout(timer)
      resolve(JSON.parse(stdout.slice(0, newline)) as { address: string, plainPort?: string })
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`the floor ${role} exited with ${String(code)} before it started:\n${stderr}`)) })
  })
  return {
    child,
    ...started,
    logs: () => stderr,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}

const chunkCount = (size: number): number => Math.ceil(size / CHUNK_BYTES)
const chunkLength = (size: number, index: number): number => Math.min(CHUNK_BYTES, size - index * CHUNK_BYTES)
/** The holder's answer before the bytes: the size (8 bytes), each chunk's BLAKE3, the object's BLAKE3. */
const headBytes = (size: number): number => 8 + chunkCount(size) * HASH_BYTES + HASH_BYTES

// ---- the holder ------------------------------------------------------------------------------

async function holderRole (args: HolderArgs): Promise<void> {
  await mkdir(args.dir, { recursive: true })
  const path = join(args.dir, args.layer.digest.replace('sha256:', ''))
  await copyFile(args.blobPath, path)
  const head = await chunkTable(path, args.layer.size)
  const key = Buffer.from(args.psk.key, 'hex')
  // TLS 1.3 with an external PSK (RFC 8446 2.2): a client without the key fails on its first
  // flight's binder, and neither side needs a certificate (the lane's one-time key).
  const serve = (socket: Socket): void => {
    serveLane(socket, path, args.layer, head).catch((err: unknown) => {
      process.stderr.write(`floor holder: ${err instanceof Error ? err.message : String(err)}\n`)
      socket.destroy()
    })
  }
  const server = tlsServer({ minVersion: 'TLSv1.3', ciphers: SUITE, pskCallback: (_socket, identity) => identity === args.psk.identity ? key : null }, serve)
  // The `tls` variant's lane: the same bytes over plain TCP (a bench on loopback only).
  const plain = netServer(serve)
  server.listen(0, '127.0.0.1')
  plain.listen(0, '127.0.0.1')
  await Promise.all([once(server, 'listening'), once(plain, 'listening')])
  const portOf = (listening: { address: () => unknown }): string => String((listening.address() as AddressInfo).port)
  process.stdout.write(`${JSON.stringify({ address: portOf(server), plainPort: portOf(plain) })}\n`)
}

/** The chunk table and the object's hash, as the bundle manifest holds them: made once, before any pull. */
async function chunkTable (path: string, size: number): Promise<Buffer> {
  const head = Buffer.alloc(headBytes(size))
  head.writeBigUInt64BE(BigInt(size), 0)
  const whole = createBlake3()
  const file = await open(path, 'r')
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES)
    for (let i = 0; i < chunkCount(size); i++) {
      const { bytesRead } = await file.read(buffer, 0, chunkLength(size, i), i * CHUNK_BYTES)
      const chunk = buffer.subarray(0, bytesRead)
      head.write(blake3Hex(chunk), 8 + i * HASH_BYTES, 'hex')
      whole.update(chunk)
    }
  } finally {
    await file.close()
  }
  head.write(whole.digestHex(), head.length - HASH_BYTES, 'hex')
  return head
}

async function serveLane (socket: Socket, path: string, layer: FloorLayer, head: Buffer): Promise<void> {
  socket.setNoDelay(true)
  socket.on('error', (err) => { process.stderr.write(`floor holder: lane: ${err.message}\n`) })
  socket.setTimeout(IDLE_TIMEOUT_MS, () => { socket.destroy(new Error(`the lane was idle for ${IDLE_TIMEOUT_MS} ms`)) })
  const asked = await firstLine(socket)
  if (asked !== layer.digest) throw new Error(`asked for ${asked.slice(0, 80)}, which this holder does not hold`)
  socket.write(head)
  const file = await open(path, constants.O_RDONLY | constants.O_DIRECT)
  const closed = new AbortController()
  socket.once('close', () => { closed.abort() })
  try {
    const aligned = new AlignedBuffers(CHUNK_BYTES, HOLDER_READ_BUFFERS)
    let lent = 0
    const waiting: Array<() => void> = []
    const give = (buffer: Uint8Array): void => { lent--; aligned.give(buffer); waiting.shift()?.() }
    const read = async (index: number): Promise<Uint8Array> => {
      while (lent === HOLDER_READ_BUFFERS) await new Promise<void>(resolve => { waiting.push(resolve) })
      lent++
      const buffer = aligned.take()
      // O_DIRECT: whole blocks; the last chunk's read comes back short at the file's end.
      const { bytesRead } = await file.read(buffer, 0, roundUpToBlock(chunkLength(layer.size, index)), index * CHUNK_BYTES)
      if (bytesRead !== chunkLength(layer.size, index)) throw new Error(`chunk ${index}: read ${bytesRead} bytes of ${chunkLength(layer.size, index)}`)
      return buffer
    }
    const chunks = chunkCount(layer.size)
    let ahead: Promise<Uint8Array> | undefined = read(0)
    for (let i = 0; i < chunks; i++) {
      const buffer = await (ahead as Promise<Uint8Array>)
      ahead = i + 1 < chunks ? read(i + 1) : undefined
      // The buffer is TLS's until the write's callback: it is read into again only after that.
      const full = socket.write(buffer.subarray(0, chunkLength(layer.size, i)), () => { give(buffer) })
      if (!full) await once(socket, 'drain', { signal: closed.signal })
    }
    await new Promise<void>(resolve => { socket.end(resolve) })
  } finally {
    await file.close()
  }
}

/** The lane's first line (the ask), at most MAX_ASK_BYTES. */
async function firstLine (socket: Socket): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    let text = ''
    const onData = (piece: Buffer): void => {
      text += piece.toString('latin1')
      const newline = text.indexOf('\n')
      if (newline < 0 && text.length <= MAX_ASK_BYTES) return
      socket.off('data', onData)
      socket.off('end', onEnd)
      if (newline >= 0) resolve(text.slice(0, newline))
      else reject(new Error(`the ask ran past ${MAX_ASK_BYTES} bytes`))
    }
    const onEnd = (): void => { reject(new Error('the lane ended before its ask')) }
    socket.on('data', onData)
    socket.once('end', onEnd)
  })
}

// ---- the edge --------------------------------------------------------------------------------

async function edgeRole (args: EdgeArgs): Promise<void> {
  await mkdir(join(args.dir, 'tmp'), { recursive: true })
  await mkdir(join(args.dir, 'objects'), { recursive: true })
  const [registryHost = '', registryPort = ''] = args.registry.split(':')
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? ''
    if (req.method === 'GET' && path.endsWith(`/blobs/${args.layer.digest}`)) {
      serveLayer(res, args).catch((err: unknown) => {
        process.stderr.write(`floor edge: ${err instanceof Error ? err.message : String(err)}\n`)
        res.destroy()
      })
    } else relay(req, res, registryHost, Number(registryPort))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  process.stdout.write(`${JSON.stringify({ address: `127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`)
}

/** Everything but the layer's GET goes to docker-registry as it came (manifests, the config, HEADs). */
function relay (req: IncomingMessage, res: ServerResponse, host: string, port: number): void {
  const upstream = httpRequest({ host, port, method: req.method, path: req.url, headers: { ...req.headers, host: `${host}:${port}` } }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers)
    pipeline(answer, res, () => {})
  })
  upstream.on('error', () => { res.destroy() })
  pipeline(req, upstream, () => {})
}

/** The layer's GET: the lane from the holder into the store and the response (see the file's head). */
async function serveLayer (res: ServerResponse, args: EdgeArgs): Promise<void> {
  const { size, digest } = args.layer
  const chunks = chunkCount(size)
  const head = Buffer.alloc(headBytes(size))
  const without = new Set(args.without)
  const hashing = !without.has('hash')
  const stagingPath = join(args.dir, 'tmp', digest.replace('sha256:', ''))
  const file = without.has('store') ? undefined : await open(stagingPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o600)
  const aligned = new AlignedBuffers(CHUNK_BYTES, EDGE_CHUNK_BUFFERS)
  /** Chunk buffers taken and not yet given back (past EDGE_CHUNK_BUFFERS the pool grows by a slab: said at the end). */
  let taken = 0
  let resolveDone!: () => void
  let rejectDone!: (err: Error) => void
  const done = new Promise<void>((resolve, reject) => { resolveDone = resolve; rejectDone = reject })
  // Awaited below once the lane is up; a failure before then must not go unhandled meanwhile.
  done.catch(() => {})
  const fail = (err: Error): void => {
    lane.destroy()
    res.destroy(err)
    rejectDone(err)
  }
  // Group commits, as partial-objects.ts: one fdatasync at a time; chunks written while it runs wait for the next.
  let dirty = false
  let committing: Promise<void> | undefined
  const commit = (): void => {
    dirty = true
    if (committing !== undefined) return
    committing = (async () => {
      while (dirty) {
        dirty = false
        await file?.datasync()
      }
      committing = undefined
    })()
    committing.catch((err: unknown) => { fail(err as Error) })
  }
  const writes = new Set<Promise<void>>()
  // The lane stops reading while the response is full or at most one chunk buffer is free: node
  // asks for the next chunk's memory right after the callback that completed one, paused or not.
  let paused = false
  const flow = (): void => {
    const stop = res.writableNeedDrain || taken >= EDGE_CHUNK_BUFFERS - 1
    if (stop && !paused) lane.pause()
    else if (!stop && paused) lane.resume()
    paused = stop
  }
  res.on('drain', flow)
  const whole = createBlake3()
  const received = (buffer: Uint8Array, index: number): void => {
    const length = chunkLength(size, index)
    const chunk = buffer.subarray(0, length)
    const expected = head.toString('hex', 8 + index * HASH_BYTES, 8 + (index + 1) * HASH_BYTES)
    if (hashing && blake3Hex(chunk) !== expected) return fail(new Error(`chunk ${index} of ${digest} does not match its BLAKE3: not kept, not served`))
    if (hashing) whole.update(chunk)
    // The buffer is the response's until its write's callback and the store's until its write returns.
    let users = file === undefined ? 1 : 2
    const release = (): void => {
      if (--users > 0) return
      taken--
      aligned.give(buffer)
      flow()
    }
    res.write(chunk, release)
    if (file !== undefined) {
      const written = file.write(buffer, 0, roundUpToBlock(length), index * CHUNK_BYTES).then(() => { commit(); release() })
      writes.add(written)
      written.then(() => { writes.delete(written) }, (err: unknown) => { fail(err as Error) })
    }
    flow()
    if (index === chunks - 1) {
      res.end()
      complete().then(() => { resolveDone() }, (err: unknown) => { fail(err as Error) })
    }
  }
  // The object is visible only once every chunk is on disk and the whole hash matched (the store's completion).
  const complete = async (): Promise<void> => {
    const expected = head.toString('hex', head.length - HASH_BYTES)
    if (hashing && whole.digestHex() !== expected) throw new Error(`${digest}: the object's BLAKE3 does not match the holder's`)
    if (file === undefined) return
    await Promise.all(writes)
    await file.truncate(size)
    while (committing !== undefined) await committing
    await file.datasync()
    await file.close()
    await rename(stagingPath, join(args.dir, 'objects', expected))
  }

  let headFilled = 0
  let current: Uint8Array | undefined
  let filled = 0
  let index = 0
  const scratch = Buffer.allocUnsafe(16 * 1024)
  const onread: OnReadOpts = {
    // Where node puts the next cleartext: the head, then the rest of the chunk being filled.
    buffer: () => {
      if (headFilled < head.length) return head.subarray(headFilled)
      if (index >= chunks) return scratch
      if (current === undefined) {
        current = aligned.take()
        taken++
        filled = 0
      }
      return current.subarray(filled, chunkLength(size, index))
    },
    callback: (length: number) => {
      if (length === 0) return true
      if (headFilled < head.length) {
        headFilled += length
        if (headFilled === head.length && Number(head.readBigUInt64BE(0)) !== size) fail(new Error(`the holder has ${head.readBigUInt64BE(0)} bytes of ${digest}, not ${size}`))
        return true
      }
      if (index >= chunks || current === undefined) {
        fail(new Error(`the holder sent more than the ${size} bytes of ${digest}`))
        return false
      }
      filled += length
      if (filled === chunkLength(size, index)) {
        const buffer = current
        current = undefined
        received(buffer, index++)
      }
      return true
    },
  }
  const options: ConnectionOptions & { onread: OnReadOpts } = {
    host: '127.0.0.1',
    port: args.holderPort,
    minVersion: 'TLSv1.3',
    ciphers: SUITE,
    checkServerIdentity: () => undefined,
    pskCallback: () => ({ identity: args.psk.identity, psk: Buffer.from(args.psk.key, 'hex') }),
    onread,
  }
  const plain = without.has('tls')
  const lane = plain ? netConnect({ host: '127.0.0.1', port: args.holderPlainPort ?? 0, onread }) : tlsConnect(options)
  lane.setTimeout(IDLE_TIMEOUT_MS, () => { fail(new Error(`the lane was idle for ${IDLE_TIMEOUT_MS} ms`)) })
  lane.on('error', fail)
  lane.on('end', () => { if (index < chunks) fail(new Error(`the lane ended after ${index} of ${chunks} chunks`)) })
  res.on('close', () => { if (!res.writableFinished) fail(new Error('the client left before the layer was sent')) })
  await once(lane, plain ? 'connect' : 'secureConnect')
  lane.setNoDelay(true)
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size), 'docker-content-digest': digest })
  lane.write(`${digest}\n`)
  await done
  lane.destroy()
  if (aligned.slabCount > 1) process.stderr.write(`floor edge: ${aligned.slabCount} slabs of ${EDGE_CHUNK_BUFFERS} chunk buffers made, not one\n`)
}

// ---- as a child ------------------------------------------------------------------------------

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [role, json = '{}'] = process.argv.slice(2)
  const run = role === 'holder' ? holderRole(JSON.parse(json) as HolderArgs) : role === 'edge' ? edgeRole(JSON.parse(json) as EdgeArgs) : Promise.reject(new Error(`bench-floor: holder or edge, not ${String(role)}`))
  run.catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
