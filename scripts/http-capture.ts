// What containerd saw of its HTTP exchanges with one loopback port, read from a packet capture
// (tcpdump) instead of an HTTP relay in the data path: the relay in this script's process cost
// ~1.4 CPU-s a 512 MiB pull on the two cores it shares with the pull it measures (docs/architecture.md,
// "The containerd bench's observer"). tcpdump copies only each packet's first bytes (headers and
// the start of each HTTP message; on loopback a packet carries up to 64 KiB), so the data path is
// containerd ↔ server alone and the observer's CPU is a few hundredths of a second.
//
// Plain HTTP/1.1 over IPv4 on one Ethernet-framed interface (`lo` by default; the bench's veth when
// the server sits behind a shaped link, bench-link.ts): request lines are read from the first bytes of the
// client's segments, responses from the server's byte offsets (status line and headers at a
// response's start, then Content-Length bytes of body; `HEAD`, 1xx, 204 and 304 have none). A
// chunked body ends where the next response starts or the connection ends.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { RelayedRequest } from '../test/helpers/http-relay.js'

const MIB = 1024 * 1024
/** Enough of each packet for the Ethernet, IP and TCP headers and an HTTP message's head. */
const SNAP_BYTES = 2048
const STARTED_TIMEOUT_MS = 10_000
const STOP_TIMEOUT_MS = 30_000
const MARKER_POLL_MS = 20

/**
 * One request as containerd sent it and the server answered it, in the HTTP relay's terms (times
 * are performance.now(); `bytes` and `mibAt` count the body the server sent).
 */
export type SeenRequest = Pick<RelayedRequest, 'method' | 'url' | 'status' | 'bytes' | 'startedAt' | 'headersAt' | 'firstByteAt' | 'endedAt' | 'mibAt'>

export interface HttpCapture {
  /** The capture process (for its CPU). */
  pid: number | undefined
  /** Stops the capture and reads what it saw. */
  stop: () => Promise<SeenRequest[]>
}

/** Where the server is seen: the interface its packets cross, and its address (for the end marker). */
export interface CapturePlace { iface?: string, host?: string }

/** Starts capturing TCP port `port` on `place.iface` (loopback) into `file`; resolves once tcpdump listens. */
export async function startHttpCapture (port: number, file: string, place: CapturePlace = {}): Promise<HttpCapture> {
  const host = place.host ?? '127.0.0.1'
  // --immediate-mode and -U: each packet handed over and written as it comes; -B: a 16 MiB
  // kernel buffer, so nothing is dropped while tcpdump waits for a CPU.
  const tcpdump = spawn('tcpdump', ['-i', place.iface ?? 'lo', '-n', '--immediate-mode', '-U', '-B', '16384', '-s', String(SNAP_BYTES), '--time-stamp-precision=micro', '-w', file, `tcp port ${port}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { tcpdump.kill(); reject(new Error(`tcpdump did not start listening within ${STARTED_TIMEOUT_MS} ms: ${stderr}`)) }, STARTED_TIMEOUT_MS)
    tcpdump.stderr?.on('data', (data: Buffer) => {
      stderr += data.toString()
      if (stderr.includes('listening on')) { clearTimeout(timer); resolve() }
    })
    tcpdump.once('error', (err) => { clearTimeout(timer); reject(new Error(`cannot run tcpdump (apt-get install tcpdump): ${err.message}`)) })
    tcpdump.once('exit', (code) => { clearTimeout(timer); reject(new Error(`tcpdump exited (${String(code)}) before listening: ${stderr}`)) })
  })
  return {
    pid: tcpdump.pid,
    stop: async () => {
      const segments = await segmentsUpToEndMark(host, port, file)
      await stopProcess(tcpdump)
      const dropped = /(\d+) packets? dropped by kernel/.exec(stderr)
      if (dropped !== null && dropped[1] !== '0') throw new Error(`tcpdump: ${dropped[1]} packets dropped by the kernel; the capture is incomplete`)
      await rm(file, { force: true })
      return requestsOf(segments, port)
    },
  }
}

/**
 * Opens and closes one connection to `port`, waits until the capture file holds its SYN, and
 * returns the file's segments: the packets before the SYN are then all written (a SIGINT drops
 * what the kernel has not yet handed over).
 */
async function segmentsUpToEndMark (host: string, port: number, file: string): Promise<Segment[]> {
  const marker = await new Promise<number>((resolve, reject) => {
    const socket = connect(port, host, () => { resolve(socket.localPort ?? 0); socket.destroy() })
    socket.once('error', reject)
  })
  const deadline = performance.now() + STOP_TIMEOUT_MS
  for (;;) {
    const segments = readPcap(await readFile(file))
    if (segments.some(s => s.syn && s.srcPort === marker && s.dstPort === port)) return segments
    if (performance.now() > deadline) throw new Error(`the capture did not show the end marker within ${STOP_TIMEOUT_MS} ms`)
    await new Promise(resolve => setTimeout(resolve, MARKER_POLL_MS))
  }
}

async function stopProcess (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('tcpdump did not stop')) }, STOP_TIMEOUT_MS)
    child.once('exit', () => { clearTimeout(timer); resolve() })
    child.kill('SIGINT')
  })
}

/** One TCP segment as captured: `payload` is its captured part, `length` its whole payload's. */
interface Segment {
  /** performance.now() of the capture. */
  at: number
  srcPort: number
  dstPort: number
  seq: number
  syn: boolean
  fin: boolean
  length: number
  payload: Buffer
}

const PCAP_MAGIC_MICRO = 0xa1b2c3d4
const LINKTYPE_ETHERNET = 1
const ETHERTYPE_IPV4 = 0x0800
const IP_PROTOCOL_TCP = 6

function readPcap (pcap: Buffer): Segment[] {
  if (pcap.length < 24) throw new Error('the capture file is shorter than its header')
  const magic = pcap.readUInt32LE(0)
  const littleEndian = magic === PCAP_MAGIC_MICRO
  if (!littleEndian && pcap.readUInt32BE(0) !== PCAP_MAGIC_MICRO) throw new Error(`not a microsecond pcap file (magic ${magic.toString(16)})`)
  const u32 = (at: number): number => littleEndian ? pcap.readUInt32LE(at) : pcap.readUInt32BE(at)
  if (u32(20) !== LINKTYPE_ETHERNET) throw new Error(`link type ${u32(20)}: only Ethernet framing (loopback's, a veth's) is read`)
  const segments: Segment[] = []
  for (let at = 24; at + 16 <= pcap.length;) {
    const epochMs = u32(at) * 1000 + u32(at + 4) / 1000
    const captured = u32(at + 8)
    const packet = pcap.subarray(at + 16, at + 16 + captured)
    const wireBytes = u32(at + 12)
    at += 16 + captured
    const segment = tcpSegmentOf(packet, wireBytes, epochMs - performance.timeOrigin)
    if (segment !== undefined) segments.push(segment)
  }
  return segments
}

/**
 * `wireBytes` is the packet's whole length: on loopback a segment can be larger than the IP
 * header's 16-bit length can say (BIG TCP), so the payload's length is taken from it (a veth's
 * frames are not padded either).
 */
function tcpSegmentOf (packet: Buffer, wireBytes: number, at: number): Segment | undefined {
  if (packet.length < 14 + 20 || packet.readUInt16BE(12) !== ETHERTYPE_IPV4) return undefined
  const ip = packet.subarray(14)
  const ipHeaderBytes = (ip.readUInt8(0) & 0x0f) * 4
  if (ip.readUInt8(9) !== IP_PROTOCOL_TCP || ip.length < ipHeaderBytes + 20) return undefined
  const tcp = ip.subarray(ipHeaderBytes)
  const tcpHeaderBytes = (tcp.readUInt8(12) >> 4) * 4
  const flags = tcp.readUInt8(13)
  return {
    at,
    srcPort: tcp.readUInt16BE(0),
    dstPort: tcp.readUInt16BE(2),
    seq: tcp.readUInt32BE(4),
    syn: (flags & 0x02) !== 0,
    fin: (flags & 0x01) !== 0,
    length: wireBytes - 14 - ipHeaderBytes - tcpHeaderBytes,
    payload: tcp.subarray(tcpHeaderBytes),
  }
}

const REQUEST_LINE = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\S+) HTTP\/1\.[01]\r\n/

/** A response being read on one connection: where it starts in the server's bytes, and its request. */
interface Connection {
  /** The server's initial sequence number + 1: offsets count from its first byte. */
  serverBase?: number
  /** Requests not yet answered whole, oldest first. */
  waiting: SeenRequest[]
  /** Offset of the current response's first byte. */
  responseStart: number
  /** Offsets of the current response's body, once its head was read; `bodyEnd` undefined for a chunked body. */
  bodyStart?: number
  bodyEnd?: number
  /** Highest server offset seen (retransmissions below it are skipped). */
  seenUpTo: number
}

function requestsOf (segments: Segment[], port: number): SeenRequest[] {
  const requests: SeenRequest[] = []
  const connections = new Map<number, Connection>()
  const connectionOf = (clientPort: number): Connection => {
    let connection = connections.get(clientPort)
    if (connection === undefined) {
      connection = { waiting: [], responseStart: 0, seenUpTo: 0 }
      connections.set(clientPort, connection)
    }
    return connection
  }
  for (const segment of segments) {
    if (segment.dstPort === port) {
      // A new connection from a port used before starts afresh.
      if (segment.syn) connections.delete(segment.srcPort)
      const connection = connectionOf(segment.srcPort)
      const line = REQUEST_LINE.exec(segment.payload.toString('latin1', 0, Math.min(segment.payload.length, 2048)))
      if (line !== null) {
        const request: SeenRequest = { method: line[1] ?? '', url: line[2] ?? '', bytes: 0, startedAt: segment.at, mibAt: [] }
        requests.push(request)
        connection.waiting.push(request)
      }
      continue
    }
    if (segment.srcPort !== port) continue
    const connection = connectionOf(segment.dstPort)
    if (segment.syn) { connection.serverBase = (segment.seq + 1) >>> 0; continue }
    if (connection.serverBase === undefined || segment.length === 0) {
      if (segment.fin) endChunked(connection, segment.at)
      continue
    }
    const offset = (segment.seq - connection.serverBase) >>> 0
    const end = offset + segment.length
    if (end <= connection.seenUpTo) continue
    const from = Math.max(offset, connection.seenUpTo)
    connection.seenUpTo = end
    readResponseBytes(connection, segment, offset, from, end)
    if (segment.fin) endChunked(connection, segment.at)
  }
  return requests
}

/**
 * The server's bytes [from, end) of one segment that starts at `offset`: a response's head, body,
 * or both, or the next one's.
 */
function readResponseBytes (connection: Connection, segment: Segment, offset: number, from: number, end: number): void {
  let at = from
  while (at < end) {
    // A body without a length ends where a segment brings the next response's head.
    if (connection.bodyEnd === undefined && connection.bodyStart !== undefined && at === offset && connection.waiting.length > 1 && segment.payload.toString('latin1', 0, 7) === 'HTTP/1.') finish(connection, segment.at, at)
    const request = connection.waiting[0]
    if (request === undefined) return
    if (connection.bodyStart === undefined) {
      // A head starts here: in this segment's captured bytes (a response's head is small).
      if (at !== connection.responseStart) return
      const head = segment.payload.subarray(at - offset)
      const headEnd = head.indexOf('\r\n\r\n')
      if (headEnd < 0) return
      const text = head.toString('latin1', 0, headEnd)
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1])
      if (status >= 100 && status < 200) { connection.responseStart = at + headEnd + 4; at = connection.responseStart; continue }
      request.status = status
      request.headersAt = segment.at
      const noBody = request.method === 'HEAD' || status === 204 || status === 304
      const length = /\r\ncontent-length: *(\d+)/i.exec(text)?.[1]
      const chunked = /\r\ntransfer-encoding: *chunked/i.test(text)
      connection.bodyStart = at + headEnd + 4
      connection.bodyEnd = noBody ? connection.bodyStart : chunked || length === undefined ? undefined : connection.bodyStart + Number(length)
      at = connection.bodyStart
    }
    const bodyStart = connection.bodyStart
    const bodyEnd = connection.bodyEnd
    if (bodyEnd !== undefined && at >= bodyEnd) { finish(connection, segment.at, bodyEnd); at = bodyEnd; continue }
    // Body bytes up to this segment's end (or the body's).
    const upTo = bodyEnd === undefined ? end : Math.min(end, bodyEnd)
    request.firstByteAt ??= segment.at
    request.bytes = upTo - bodyStart
    while (request.bytes >= (request.mibAt.length + 1) * MIB) request.mibAt.push(segment.at)
    at = upTo
    if (bodyEnd !== undefined && upTo === bodyEnd) { finish(connection, segment.at, bodyEnd) }
  }
}

function finish (connection: Connection, at: number, next: number): void {
  const request = connection.waiting.shift()
  if (request !== undefined) request.endedAt = at
  connection.responseStart = next
  connection.bodyStart = undefined
  connection.bodyEnd = undefined
}

/** A chunked body (or one without a length) ends with its connection. */
function endChunked (connection: Connection, at: number): void {
  if (connection.bodyStart !== undefined && connection.bodyEnd === undefined) finish(connection, at, connection.seenUpTo)
}
