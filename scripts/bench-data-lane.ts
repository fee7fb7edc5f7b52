// What would chunk bodies cost on a TLS socket beside libp2p? (issue 10)
//
//   node --import tsx scripts/bench-data-lane.ts [--size-mb 512] [--runs 3] [--hash]
//        [--lanes raw,tls-aes,tls-chacha,tls-psk,tls-onread,sealed,libp2p-key,libp2p] [--write-kb 1024] [--bare] [--node-flags '…']
//        [--env 'NAME=VALUE …'] [--seal-update-kb 64]
//
// Moves --size-mb MiB from one process to another on 127.0.0.1, --runs times per lane, the lanes
// interleaved within each run, and prints medians: MB/s, CPU-seconds per GiB on each side (the
// whole process, getrusage, and its main thread alone, /proc), and the ratios against raw TCP.
//   raw         a `net` socket
//   tls-aes     a node:tls socket straight on TCP, TLS 1.3 with TLS_AES_128_GCM_SHA256
//   tls-chacha  the same with TLS_CHACHA20_POLY1305_SHA256
//               Both ends present a self-signed certificate (made with @libp2p/tls's code, so it
//               also carries the peer's libp2p key); each accepts only the fingerprint it was told,
//               and the sender sends nothing until the receiver's first 32 bytes are the one-time
//               token it was told: the admission the design note in docs/architecture.md ("A data
//               lane beside libp2p: measured") proposes, with the parent in the role of the
//               libp2p connection that would carry fingerprints and token.
//   tls-psk     TLS 1.3 (AES-128-GCM) with a one-time external pre-shared key instead of
//               certificates and token: both ends prove they hold it in the handshake itself.
//   tls-onread  tls-psk read as the daemon's lane asker reads it (lane-transport.ts): net's
//               `onread` into one reused 16 KiB buffer, no 'data' event or fresh buffer per record.
//   sealed      plain TCP, each write (<= 1 MiB) sealed as one AES-128-GCM frame: 4-byte length
//               (the AAD) | ciphertext | 16-byte tag, nonce a 64-bit counter, key from HKDF-SHA256
//               over a one-time key; the receiver reads with `onread` straight into one reused
//               frame buffer, opens each frame whole and hands the plaintext on only after its tag
//               verified (issue 8: TLS 1.3 caps records at 16 KiB, one JavaScript call each).
//   libp2p-key  the daemons' own libp2p node (src/swarm createNode: TCP with socket batching, the
//               swarm key's AES-256-CTR, noise, yamux with the daemons' window, kad-dht, identify,
//               ping), one stream
//   libp2p      the same without a swarm key
// The sender writes --write-kb pieces (1 MiB: a chunk) from a pool of random buffers and waits
// for the socket or stream to drain when it says it is full; the receiver discards what arrives
// (--hash: BLAKE3 over it first, through src/hash, as an edge hashes every chunk). No disk on
// either side: this is the transport alone. Every child loads the swarm module as a daemon holds
// it (--bare: the raw and TLS children do not). Every child runs with the node flags and the
// environment bin/shoal.js's first line gives a daemon (MALLOC_TRIM_THRESHOLD_, semi-space size),
// then --node-flags and --env (to try V8 and malloc settings). Minor page faults are counted too:
// on this machine kind a fault costs ~15 µs, and fresh receive buffers can cost more than the cipher.
import '../src/polyfill.js'
import { fork } from 'node:child_process'
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomFillSync, timingSafeEqual, X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { connect as netConnect, createServer as netServer, type Server, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { connect as tlsConnect, createServer as tlsServer, type TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { createBlake3 } from '../src/hash/index.js'
import type { ShoalNode } from '../src/swarm/index.js'
import { shebangEnv, shebangNodeFlags } from '../test/helpers/shoal-cli.js'
import { cpuMark, cpuSince, firstMessage, talkTo, tell, type Child, type CpuMark } from './bench-child.js'
import { median } from './timed-run.js'

const MIB = 1024 * 1024
const GIB = 1024 * MIB
const THIS_SCRIPT = fileURLToPath(import.meta.url)
const LANES = ['raw', 'tls-aes', 'tls-chacha', 'tls-psk', 'tls-onread', 'sealed', 'libp2p-key', 'libp2p'] as const
type Lane = typeof LANES[number]
const TLS_SUITES: Partial<Record<Lane, string>> = { 'tls-aes': 'TLS_AES_128_GCM_SHA256', 'tls-chacha': 'TLS_CHACHA20_POLY1305_SHA256', 'tls-psk': 'TLS_AES_128_GCM_SHA256', 'tls-onread': 'TLS_AES_128_GCM_SHA256' }
const TOKEN_BYTES = 32
/** Distinct buffers the sender cycles through, so the bytes are not one repeated MiB. */
const POOL_BUFFERS = 8
const BENCH_PROTOCOL = '/shoal-bench/data-lane/1.0.0'

interface Options { sizeMb: number, runs: number, hash: boolean, lanes: Lane[], writeBytes: number, nodeFlags: string[], bare: boolean, env: Record<string, string>, sealUpdateBytes: number }

/** One end's credentials and what it must see of the other's: what libp2p would carry. */
interface TlsPair {
  sender: { key: string, cert: string }
  receiver: { key: string, cert: string }
  senderFingerprint: string
  receiverFingerprint: string
}

interface SideReport {
  cpuSeconds: number
  mainCpuSeconds: number
  maxRssMb: number
  /** Minor page faults: memory touched for the first time (fresh buffers). */
  faults: number
  bytes?: number
  /** Receiver: how many pieces the transport handed to JavaScript. */
  pieces?: number
  seconds?: number
  /** Receiver: from the first connect to the first byte it may accept (TCP, handshakes, checks). */
  setupMs?: number
  digest?: string
}

interface LaneArgs {
  lane: Lane, sizeMb: number, writeBytes: number, hash: boolean, bare: boolean, swarmKey?: string, tls?: TlsPair, token?: string
  /** tls-psk, tls-onread, sealed: the lane's one-time key and its name, hex. */
  psk?: { identity: string, key: string }
  /** sealed: bytes given to the cipher per update. */
  sealUpdateBytes: number
}

function parseArgs (argv: string[]): Options {
  const options: Options = { sizeMb: 512, runs: 3, hash: false, lanes: [...LANES], writeBytes: MIB, nodeFlags: [], bare: false, env: {}, sealUpdateBytes: SEAL_UPDATE_BYTES }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (): string => argv[++i] ?? ''
    if (arg === '--size-mb') options.sizeMb = Number(value())
    else if (arg === '--runs') options.runs = Number(value())
    else if (arg === '--hash') options.hash = true
    else if (arg === '--bare') options.bare = true
    else if (arg === '--write-kb') options.writeBytes = Number(value()) * 1024
    else if (arg === '--seal-update-kb') options.sealUpdateBytes = Number(value()) * 1024
    else if (arg === '--node-flags') options.nodeFlags = value().split(' ').filter(f => f !== '')
    else if (arg === '--env') options.env = Object.fromEntries(value().split(' ').filter(w => w.includes('=')).map(w => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]))
    else if (arg === '--lanes') {
      options.lanes = value().split(',').map(name => {
        if (!(LANES as readonly string[]).includes(name)) throw new Error(`unknown lane ${name}: one of ${LANES.join(', ')}`)
        return name as Lane
      })
    } else throw new Error(`unknown argument ${arg ?? ''}`)
  }
  return options
}

// ---- the parent -----------------------------------------------------------------------------

async function main (): Promise<void> {
  const options = parseArgs(process.argv.slice(2))
  const nodeFlags = [...shebangNodeFlags(), ...options.nodeFlags]
  const env = { ...shebangEnv(), ...options.env }
  const results = new Map<Lane, Array<{ send: SideReport, recv: SideReport }>>(options.lanes.map(lane => [lane, []]))
  for (let run = 1; run <= options.runs; run++) {
    for (const lane of options.lanes) {
      const args: LaneArgs = { lane, sizeMb: options.sizeMb, writeBytes: options.writeBytes, hash: options.hash, bare: options.bare, sealUpdateBytes: options.sealUpdateBytes }
      if (lane === 'libp2p-key') args.swarmKey = Buffer.from((await swarmModule()).generateSwarmKey()).toString('latin1')
      if (lane === 'tls-psk' || lane === 'tls-onread' || lane === 'sealed') args.psk = { identity: randomBytes(8).toString('hex'), key: randomBytes(TOKEN_BYTES).toString('hex') }
      else if (TLS_SUITES[lane] !== undefined) {
        args.tls = await tlsPair()
        args.token = randomBytes(TOKEN_BYTES).toString('hex')
      }
      const result = await runLane(args, nodeFlags, env)
      results.get(lane)?.push(result)
      console.log(`run ${run} ${lane.padEnd(10)} ${mbps(result.recv).toFixed(0).padStart(5)} MB/s  sender ${perGib(result.send, options).toFixed(2)} receiver ${perGib(result.recv, options).toFixed(2)} CPU-s/GiB  setup ${(result.recv.setupMs ?? NaN).toFixed(0)} ms`)
    }
  }
  printSummary(results, options, nodeFlags, env)
}

function printSummary (results: Map<Lane, Array<{ send: SideReport, recv: SideReport }>>, options: Options, nodeFlags: string[], env: Record<string, string>): void {
  const flags = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...nodeFlags].join(' ')
  console.log('')
  console.log(`medians of ${options.runs} runs, ${options.sizeMb} MiB per run, ${options.writeBytes / 1024} KiB writes, receiver ${options.hash ? 'hashes (BLAKE3) and ' : ''}discards; node ${flags}`)
  console.log('CPU-seconds per GiB, whole process (main thread); ratios against raw TCP')
  console.log('lane          MB/s  sender            receiver          both    vs raw: sender receiver both  setup')
  const rawRuns = results.get('raw')
  const base = rawRuns === undefined ? undefined : { send: median(rawRuns.map(r => perGib(r.send, options))), recv: median(rawRuns.map(r => perGib(r.recv, options))), both: median(rawRuns.map(r => perGib(r.send, options) + perGib(r.recv, options))) }
  for (const [lane, runs] of results) {
    const send = median(runs.map(r => perGib(r.send, options)))
    const recv = median(runs.map(r => perGib(r.recv, options)))
    const both = median(runs.map(r => perGib(r.send, options) + perGib(r.recv, options)))
    const sendMain = median(runs.map(r => mainPerGib(r.send, options)))
    const recvMain = median(runs.map(r => mainPerGib(r.recv, options)))
    const ratio = (a: number, b: number | undefined): string => (b === undefined ? '-' : `${(a / b).toFixed(2)}x`).padStart(7)
    console.log(`${lane.padEnd(11)} ${median(runs.map(r => mbps(r.recv))).toFixed(0).padStart(6)}  ${send.toFixed(2).padStart(5)} (${sendMain.toFixed(2).padStart(5)})    ${recv.toFixed(2).padStart(5)} (${recvMain.toFixed(2).padStart(5)})    ${both.toFixed(2).padStart(5)}   ${ratio(send, base?.send)} ${ratio(recv, base?.recv)} ${ratio(both, base?.both)}  ${median(runs.map(r => r.recv.setupMs ?? NaN)).toFixed(0).padStart(4)} ms`)
  }
  const faults = (side: 'send' | 'recv'): string => [...results].map(([lane, runs]) => `${lane} ${median(runs.map(r => r[side].faults / (options.sizeMb / 1024))).toFixed(0)}`).join(', ')
  console.log(`minor page faults per GiB: sender ${faults('send')}; receiver ${faults('recv')}`)
  console.log(`receiver: KiB per piece handed to JavaScript ${[...results].map(([lane, runs]) => `${lane} ${median(runs.map(r => (r.recv.bytes ?? 0) / (r.recv.pieces ?? 1) / 1024)).toFixed(1)}`).join(', ')}`)
  const rss = (side: 'send' | 'recv'): string => [...results].map(([lane, runs]) => `${lane} ${median(runs.map(r => r[side].maxRssMb)).toFixed(0)}`).join(', ')
  console.log(`peak RSS MB (whole child, start-up included): sender ${rss('send')}; receiver ${rss('recv')}`)
}

function perGib (side: SideReport, options: Options): number {
  return side.cpuSeconds / (options.sizeMb * MIB / GIB)
}

function mainPerGib (side: SideReport, options: Options): number {
  return side.mainCpuSeconds / (options.sizeMb * MIB / GIB)
}

function mbps (side: SideReport): number {
  return (side.bytes ?? 0) / 1e6 / (side.seconds ?? Infinity)
}

/** Two fresh libp2p identities and their TLS certificates (the libp2p TLS spec's form), with fingerprints. */
async function tlsPair (): Promise<TlsPair> {
  const { generateCertificate } = await import('@libp2p/tls/utils')
  const { createPeerKey } = await swarmModule()
  const sender = await generateCertificate(await createPeerKey())
  const receiver = await generateCertificate(await createPeerKey())
  return { sender, receiver, senderFingerprint: new X509Certificate(sender.cert).fingerprint256, receiverFingerprint: new X509Certificate(receiver.cert).fingerprint256 }
}

async function runLane (args: LaneArgs, nodeFlags: string[], env: Record<string, string>): Promise<{ send: SideReport, recv: SideReport }> {
  const sender = spawnRole('send', args, nodeFlags, env)
  const { address } = await sender.next() as { address: string }
  const receiver = spawnRole('recv', { ...args, address }, nodeFlags, env)
  const recv = await receiver.next() as unknown as SideReport
  const send = await sender.next() as unknown as SideReport
  // Only now may the sender close its node: stopping libp2p drops what its queues still hold.
  sender.process.send({ stop: true })
  if (recv.bytes !== args.sizeMb * MIB) throw new Error(`${args.lane}: received ${recv.bytes ?? 0} bytes of ${args.sizeMb * MIB}`)
  return { send, recv }
}

function spawnRole (role: 'send' | 'recv', args: object, nodeFlags: string[], env: Record<string, string>): Child {
  const child = fork(THIS_SCRIPT, ['--role', role], { execArgv: ['--import', 'tsx', ...nodeFlags], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return talkTo(child, role, args)
}

/**
 * The swarm module, loaded by every child unless --bare: a daemon's data lane would run in a
 * process holding all of it, and a socket's cost per byte grows with the process (the raw TCP
 * receiver spent 2.2-2.4x the CPU per byte with it loaded, page faults mostly;
 * docs/architecture.md).
 */
async function swarmModule (): Promise<typeof import('../src/swarm/index.js')> {
  return await import('../src/swarm/index.js')
}

// ---- the children ---------------------------------------------------------------------------

interface Mark { cpu: CpuMark, faults: number }

function mark (): Mark {
  return { cpu: cpuMark(), faults: process.resourceUsage().minorPageFault }
}

function report (start: Mark, extra: Partial<SideReport> = {}): SideReport {
  const usage = process.resourceUsage()
  return { ...cpuSince(start.cpu), maxRssMb: usage.maxRSS / 1024, faults: usage.minorPageFault - start.faults, ...extra }
}

/** The sender's buffers, filled before the clock starts. */
function bufferPool (writeBytes: number): Buffer[] {
  return Array.from({ length: POOL_BUFFERS }, () => randomFillSync(Buffer.allocUnsafe(writeBytes)))
}

/** Writes `total` bytes in pieces from the pool, waiting for 'drain' whenever the socket is full. */
async function writeAll (socket: Socket, pool: Buffer[], total: number): Promise<void> {
  for (let sent = 0, i = 0; sent < total; i++) {
    const piece = pool[i % pool.length] ?? Buffer.alloc(0)
    const part = total - sent < piece.length ? piece.subarray(0, total - sent) : piece
    sent += part.length
    if (!socket.write(part)) await once(socket, 'drain')
  }
  await new Promise<void>(resolve => { socket.end(resolve) })
}

// ---- the sealed lane -------------------------------------------------------------------------

const SEAL_HEAD_BYTES = 4
const SEAL_TAG_BYTES = 16
const SEAL_MAX_FRAME_BYTES = MIB
/**
 * The cipher is given a frame this much at a time (--seal-update-kb): each update returns a fresh
 * buffer, and one of 1 MiB is past malloc's mmap threshold (128 KiB), so every page of it faulted
 * fresh (527 thousand minor faults per GiB each side, 2.3 CPU-s per GiB a side); 64 KiB ones
 * mostly reuse the heap (28-41 thousand).
 */
const SEAL_UPDATE_BYTES = 64 * 1024

/** The direction's AES-128 key: HKDF-SHA256 over the one-time key (the daemon's would salt it with both hellos). */
function sealKey (args: LaneArgs): Buffer {
  if (args.psk === undefined) throw new Error('sealed needs a key')
  return Buffer.from(hkdfSync('sha256', Buffer.from(args.psk.key, 'hex'), Buffer.alloc(0), 'shoal lane holder to asker', 16))
}

/** 96-bit GCM nonce: 4 zero bytes, then the frame's 64-bit counter. */
function sealNonce (counter: bigint): Buffer {
  const nonce = Buffer.alloc(12)
  nonce.writeBigUInt64BE(counter, 4)
  return nonce
}

/** Writes `total` bytes, each piece one sealed frame (length | ciphertext | tag), waiting for 'drain' as writeAll does. */
async function writeSealed (socket: Socket, pool: Buffer[], total: number, key: Buffer, updateBytes: number): Promise<void> {
  let counter = 0n
  for (let sent = 0, i = 0; sent < total; i++) {
    const piece = pool[i % pool.length] ?? Buffer.alloc(0)
    const part = total - sent < piece.length ? piece.subarray(0, total - sent) : piece
    sent += part.length
    const head = Buffer.allocUnsafe(SEAL_HEAD_BYTES)
    head.writeUInt32BE(part.length)
    const cipher = createCipheriv('aes-128-gcm', key, sealNonce(counter++))
    cipher.setAAD(head)
    socket.cork()
    socket.write(head)
    for (let at = 0; at < part.length; at += updateBytes) socket.write(cipher.update(part.subarray(at, at + updateBytes)))
    cipher.final()
    const room = socket.write(cipher.getAuthTag())
    socket.uncork()
    if (!room) await once(socket, 'drain')
  }
  await new Promise<void>(resolve => { socket.end(resolve) })
}

/**
 * The receiver's frames: node reads the socket straight into one reused buffer where the frame
 * being assembled goes (net's `onread` with a buffer function), the head first (4 bytes, its own
 * read), then the rest of the frame in as few reads as the kernel allows. A whole frame is opened
 * at once and its plaintext handed on only once the tag verified.
 */
function sealedReader (key: Buffer, updateBytes: number, take: (plaintext: Uint8Array) => void, fail: (err: Error) => void): { buffer: () => Uint8Array, callback: (length: number) => boolean, reads: () => number } {
  const frame = Buffer.allocUnsafeSlow(SEAL_MAX_FRAME_BYTES + SEAL_TAG_BYTES)
  const head = Buffer.allocUnsafeSlow(SEAL_HEAD_BYTES)
  let headFilled = 0
  /** Bytes of ciphertext and tag this frame has, and will have; -1 while reading the head. */
  let filled = 0
  let want = -1
  let counter = 0n
  let reads = 0
  return {
    buffer: () => want < 0 ? head.subarray(headFilled) : frame.subarray(filled, want),
    callback: (length) => {
      reads++
      if (want < 0) {
        headFilled += length
        if (headFilled < SEAL_HEAD_BYTES) return true
        const size = head.readUInt32BE(0)
        if (size > SEAL_MAX_FRAME_BYTES) { fail(new Error(`a sealed frame of ${size} bytes`)); return false }
        want = size + SEAL_TAG_BYTES
        filled = 0
        return true
      }
      filled += length
      if (filled < want) return true
      const decipher = createDecipheriv('aes-128-gcm', key, sealNonce(counter++))
      decipher.setAAD(head)
      decipher.setAuthTag(frame.subarray(want - SEAL_TAG_BYTES, want))
      const plaintext: Buffer[] = []
      for (let at = 0; at < want - SEAL_TAG_BYTES; at += updateBytes) plaintext.push(decipher.update(frame.subarray(at, Math.min(at + updateBytes, want - SEAL_TAG_BYTES))))
      try {
        decipher.final()
      } catch (err) {
        fail(err as Error)
        return false
      }
      want = -1
      headFilled = 0
      for (const piece of plaintext) take(piece)
      return true
    },
    reads: () => reads,
  }
}

/** What the receiver does with each piece: count it, and hash it when asked. */
function sink (hash: boolean): { take: (piece: Uint8Array) => void, bytes: () => number, pieces: () => number, digest: () => string | undefined } {
  const hasher = hash ? createBlake3() : undefined
  let bytes = 0
  let pieces = 0
  return {
    take: (piece) => { bytes += piece.byteLength; pieces++; hasher?.update(piece) },
    bytes: () => bytes,
    pieces: () => pieces,
    digest: () => hasher?.digestHex(),
  }
}

async function listen (server: Server): Promise<string> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return String((server.address() as { port: number }).port)
}

async function sendRole (): Promise<void> {
  const args = await firstMessage() as unknown as LaneArgs
  if (!args.bare) await swarmModule()
  const pool = bufferPool(args.writeBytes)
  const total = args.sizeMb * MIB
  if (args.lane === 'libp2p' || args.lane === 'libp2p-key') return await sendLibp2p(args, pool, total)
  let accept!: (socket: Socket) => void
  let refuse!: (err: Error) => void
  const accepted = new Promise<Socket>((resolve, reject) => { accept = resolve; refuse = reject })
  const server = laneServer(args, accept, refuse)
  await tell({ address: await listen(server) })
  const socket = await accepted
  server.close()
  const start = mark()
  if (args.lane === 'sealed') await writeSealed(socket, pool, total, sealKey(args), args.sealUpdateBytes)
  else await writeAll(socket, pool, total)
  const stop = firstMessage()
  await tell(report(start))
  await stop
}

/** The sender's listener: plain TCP, TLS with pinned certificates and a token, or TLS with a one-time key. */
function laneServer (args: LaneArgs, accept: (socket: Socket) => void, refuse: (err: Error) => void): Server {
  const suite = TLS_SUITES[args.lane]
  if (suite === undefined) return netServer(accept)
  const { psk, tls } = args
  if (psk !== undefined) {
    // TLS 1.3 with an external PSK (RFC 8446 2.2, psk_dhe_ke): a client without the key fails on
    // its first flight's binder, and neither side needs a certificate.
    const key = Buffer.from(psk.key, 'hex')
    return tlsServer({ minVersion: 'TLSv1.3', ciphers: suite, pskCallback: (_socket, identity) => identity === psk.identity ? key : null }, accept)
  }
  if (tls === undefined) throw new Error(`${args.lane} needs certificates`)
  return tlsServer({ ...tls.sender, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3', ciphers: suite }, (socket: TLSSocket) => {
    admitted(socket, tls.receiverFingerprint, args.token ?? '').then(() => { accept(socket) }, refuse)
  })
}

/**
 * The sender's side of the admission: the peer's certificate is the one it was told of, and its
 * first bytes are the token. A socket that fails either is destroyed before a byte is sent.
 */
async function admitted (socket: TLSSocket, fingerprint: string, token: string): Promise<void> {
  const seen = socket.getPeerX509Certificate()?.fingerprint256
  if (seen !== fingerprint) {
    socket.destroy()
    throw new Error(`unexpected certificate ${seen ?? 'none'}`)
  }
  const expected = Buffer.from(token, 'hex')
  let received = Buffer.alloc(0)
  while (received.length < expected.length) {
    const [piece] = await once(socket, 'data') as [Buffer]
    received = Buffer.concat([received, piece])
  }
  if (received.length !== expected.length || !timingSafeEqual(received, expected)) {
    socket.destroy()
    throw new Error('wrong token')
  }
}

async function sendLibp2p (args: LaneArgs, pool: Buffer[], total: number): Promise<void> {
  const node = await bareNode(args, true)
  let done!: Promise<SideReport>
  const streamed = new Promise<void>(resolve => {
    void node.handle(BENCH_PROTOCOL, (stream) => {
      const start = mark()
      done = (async () => {
        for (let sent = 0, i = 0; sent < total; i++) {
          const piece = pool[i % pool.length] ?? Buffer.alloc(0)
          const part = total - sent < piece.length ? piece.subarray(0, total - sent) : piece
          sent += part.length
          // As the chunk server sends: hand the muxer a piece, wait when it says its queue is full.
          if (!stream.send(part)) await stream.onDrain()
        }
        await stream.close()
        return report(start)
      })()
      resolve()
    })
  })
  await tell({ address: node.getMultiaddrs()[0]?.toString() })
  await streamed
  const stop = firstMessage()
  await tell(await done)
  await stop
  await node.stop()
}

async function bareNode (args: LaneArgs, listening: boolean): Promise<ShoalNode> {
  const { createNode, createPeerKey } = await swarmModule()
  const node = await createNode({
    privateKey: await createPeerKey(),
    listen: listening ? ['/ip4/127.0.0.1/tcp/0'] : [],
    bootstrap: [],
    mdns: false,
    swarmKey: args.swarmKey === undefined ? undefined : Buffer.from(args.swarmKey, 'latin1'),
    gater: {},
  })
  await node.start()
  return node
}

async function recvRole (): Promise<void> {
  const args = await firstMessage() as unknown as LaneArgs & { address: string }
  if (!args.bare) await swarmModule()
  const into = sink(args.hash)
  const setupStart = performance.now()
  if (args.lane === 'libp2p' || args.lane === 'libp2p-key') {
    const node = await bareNode(args, false)
    const stream = await node.dialProtocol(multiaddr(args.address), BENCH_PROTOCOL)
    const setupMs = performance.now() - setupStart
    const start = mark()
    const started = performance.now()
    await new Promise<void>((resolve, reject) => {
      stream.addEventListener('message', (evt) => {
        if (evt.data instanceof Uint8Array) into.take(evt.data)
        else for (const piece of evt.data) into.take(piece)
      })
      stream.addEventListener('remoteCloseWrite', () => { resolve() })
      stream.addEventListener('close', (evt) => { if (evt.error !== undefined) reject(evt.error); else resolve() })
    })
    const result = report(start, { bytes: into.bytes(), pieces: into.pieces(), seconds: (performance.now() - started) / 1000, setupMs, digest: into.digest() })
    await node.stop()
    await tell(result)
    return
  }
  const port = Number(args.address)
  if (args.lane === 'sealed') return await recvSealed(args, port, into, setupStart)
  const suite = TLS_SUITES[args.lane]
  const { psk } = args
  /** tls-onread: net's onread into one reused buffer, the record's cleartext lent for the call. */
  let lentPieces = 0
  const lent = Buffer.allocUnsafeSlow(16 * 1024)
  const onread = args.lane === 'tls-onread' ? { onread: { buffer: lent, callback: (length: number) => { lentPieces++; into.take(lent.subarray(0, length)); return true } } } : {}
  const socket: Socket = suite === undefined
    ? netConnect(port, '127.0.0.1')
    : tlsConnect({
      ...onread,
      port,
      host: '127.0.0.1',
      minVersion: 'TLSv1.3',
      ciphers: suite,
      checkServerIdentity: () => undefined,
      ...(psk !== undefined
        ? { pskCallback: () => ({ identity: psk.identity, psk: Buffer.from(psk.key, 'hex') }) }
        : { ...args.tls?.receiver, rejectUnauthorized: false }),
    })
  await once(socket, suite === undefined ? 'connect' : 'secureConnect')
  if (suite !== undefined && psk === undefined) {
    // The receiver's side of the admission: the sender is the certificate it was told of; then the token.
    const seen = (socket as TLSSocket).getPeerX509Certificate()?.fingerprint256
    if (seen !== args.tls?.senderFingerprint) throw new Error(`unexpected certificate ${seen ?? 'none'}`)
    socket.write(Buffer.from(args.token ?? '', 'hex'))
  }
  const setupMs = performance.now() - setupStart
  const start = mark()
  const started = performance.now()
  socket.on('data', into.take)
  await once(socket, 'end')
  await tell(report(start, { bytes: into.bytes(), pieces: lentPieces > 0 ? lentPieces : into.pieces(), seconds: (performance.now() - started) / 1000, setupMs, digest: into.digest() }))
  socket.destroy()
}

async function recvSealed (args: LaneArgs, port: number, into: ReturnType<typeof sink>, setupStart: number): Promise<void> {
  let failed: Error | undefined
  const reader = sealedReader(sealKey(args), args.sealUpdateBytes, into.take, (err) => { failed = err })
  const socket = netConnect({ port, host: '127.0.0.1', onread: { buffer: reader.buffer, callback: reader.callback } })
  await once(socket, 'connect')
  const setupMs = performance.now() - setupStart
  const start = mark()
  const started = performance.now()
  await Promise.race([once(socket, 'end'), once(socket, 'close')])
  if (failed !== undefined) throw failed
  await tell(report(start, { bytes: into.bytes(), pieces: reader.reads(), seconds: (performance.now() - started) / 1000, setupMs, digest: into.digest() }))
  socket.destroy()
}

const roleAt = process.argv.indexOf('--role')
const role = roleAt >= 0 ? process.argv[roleAt + 1] : undefined
const run = role === undefined ? main : role === 'send' ? sendRole : role === 'recv' ? recvRole : undefined
if (role !== undefined) process.channel?.ref()
if (run === undefined) throw new Error(`unknown role ${role ?? ''}`)
run().then(() => { if (role !== undefined) process.disconnect?.() }, (err: unknown) => {
  console.error(err)
  process.exit(1)
})
