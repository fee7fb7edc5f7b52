import { randomBytes } from 'node:crypto'
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net'
import { connect as tlsConnect, createSecureContext, TLSSocket } from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { LANE_CIPHER_SUITE } from '../../src/swarm/constants.js'
import { tickedTransport } from '../../src/swarm/lane-transport.js'
import { ReadTicker } from '../../src/swarm/socket-batching.js'
import { observeReads } from '../../src/swarm/tcp-boundary.js'
import { wakeOrTimeout } from '../../src/wait/index.js'

/**
 * The asker's lane transport (lane-transport.ts): TLS reads its TCP socket through a Duplex,
 * so the shared read tick can stop the TCP socket, and the socket reads into one reused buffer.
 * Real TLS 1.3 with a PSK over TCP on loopback, as a lane's.
 */

const KiB = 1024
const MiB = 1024 * KiB
const IDENTITY = 'aa'.repeat(16)

describe('lane transport', () => {
  const servers: Server[] = []
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy()
    for (const server of servers.splice(0)) await new Promise(resolve => server.close(resolve))
  })

  /** A holder's TLS socket and an asker's through tickedTransport, with the asker's TCP socket and its reads counted. */
  async function pair (ticker: ReadTicker): Promise<{ holder: TLSSocket, asker: TLSSocket, tcp: Socket, reads: number[], dataEvents: () => number }> {
    const key = randomBytes(32)
    const context = createSecureContext({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: LANE_CIPHER_SUITE })
    let accepted: (tls: TLSSocket) => void = () => {}
    const holderReady = new Promise<TLSSocket>((resolve) => { accepted = resolve })
    const server = createServer((socket) => {
      sockets.push(socket)
      const tls = new TLSSocket(socket, { isServer: true, secureContext: context, pskCallback: () => key } as unknown as ConstructorParameters<typeof TLSSocket>[1])
      tls.once('secure', () => { accepted(tls) })
    })
    servers.push(server)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const tcp = netConnect({ host: '127.0.0.1', port, noDelay: true })
    sockets.push(tcp)
    let dataEvents = 0
    const transport = tickedTransport(tcp, ticker)
    // A listener of its own: were the socket emitting 'data' (a fresh buffer per read), this would count them.
    tcp.on('data', () => { dataEvents++ })
    const reads: number[] = []
    observeReads(tcp, (bytes) => { reads.push(bytes) })
    const asker = tlsConnect({
      socket: transport,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: LANE_CIPHER_SUITE,
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ identity: IDENTITY, psk: key }),
    })
    sockets.push(asker)
    await new Promise<void>((resolve, reject) => { asker.once('secureConnect', resolve).once('error', reject) })
    const holder = await holderReady
    sockets.push(holder)
    return { holder, asker, tcp, reads, dataEvents: () => dataEvents }
  }

  /** Resolves with the first `length` bytes `socket` delivers. */
  async function receive (socket: TLSSocket, length: number): Promise<Buffer> {
    const pieces: Buffer[] = []
    let got = 0
    return await new Promise<Buffer>((resolve, reject) => {
      socket.on('data', (piece: Buffer) => {
        pieces.push(piece)
        got += piece.length
        if (got >= length) resolve(Buffer.concat(pieces))
      })
      socket.once('error', reject)
    })
  }

  it('hands a holder\'s bytes to TLS intact and in order, the TCP socket read into one buffer', async () => {
    const { holder, asker, reads, dataEvents } = await pair(new ReadTicker(20))
    const sent = randomBytes(8 * MiB)
    const received = receive(asker, sent.length)
    for (let at = 0; at < sent.length; at += MiB) holder.write(sent.subarray(at, at + MiB))
    expect((await received).equals(sent)).toBe(true)
    expect(reads.reduce((sum, bytes) => sum + bytes, 0)).toBeGreaterThan(sent.length)
    expect(dataEvents()).toBe(0)
  })

  it('reads what arrives while the TCP socket waits for the tick in one read', async () => {
    // Long enough that the pieces all arrive while the socket waits.
    const { holder, asker, reads } = await pair(new ReadTicker(300))
    const pieces = Array.from({ length: 10 }, () => randomBytes(4 * KiB))
    const received = receive(asker, 10 * 4 * KiB)
    const readsBefore = reads.length
    for (const piece of pieces) {
      holder.write(piece)
      // Two turns: the asker's poll phase comes between, so a reading socket reads each piece alone.
      await new Promise(resolve => setImmediate(resolve))
      await new Promise(resolve => setImmediate(resolve))
    }
    expect((await received).equals(Buffer.concat(pieces))).toBe(true)
    expect(reads.length - readsBefore).toBeLessThanOrEqual(3)
  })

  it('stops reading the TCP socket while TLS\'s reader is paused, and delivers everything once it resumes', async () => {
    const { holder, asker, tcp } = await pair(new ReadTicker(20))
    asker.pause()
    const sent = randomBytes(32 * MiB)
    let drained = false
    holder.once('drain', () => { drained = true })
    for (let at = 0; at < sent.length; at += MiB) holder.write(sent.subarray(at, at + MiB))
    // Not a sleep for synchronisation: a window in which the holder's queue must not empty.
    // Were the TCP socket read on, TLS would take all 32 MiB into memory and the queue would drain.
    await wakeOrTimeout(undefined, { timeoutMs: 1_000 })
    expect(drained).toBe(false)
    expect(tcp.bytesRead).toBeLessThan(8 * MiB)
    const received = receive(asker, sent.length)
    asker.resume()
    expect((await received).equals(sent)).toBe(true)
  })
})
