import { readFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it, vi } from 'vitest'
import { batchWrites, MAX_WAIT_TICKS, RATE_WINDOW_MS, ReadTicker } from '../../src/swarm/socket-batching.js'
import { readIntoOneBuffer } from '../../src/swarm/tcp-boundary.js'
import { useBareNodes } from './bare-nodes.js'

/**
 * Small writes of one event-loop turn leave a socket in one system call; a large write leaves
 * at once, with what waited before it. Real TCP sockets on loopback; the calls into the
 * socket's libuv handle are counted (each is one write or writev system call, or a queued one).
 */
describe('socket write batching', () => {
  const { start, servers, sockets } = useBareNodes()

  /** A connected client socket and a promise of the first `expected` bytes the server reads. */
  async function socketPair (expected: number): Promise<{ client: Socket, received: Promise<Buffer> }> {
    let resolveReceived!: (bytes: Buffer) => void
    const received = new Promise<Buffer>(resolve => { resolveReceived = resolve })
    const server = createServer(socket => {
      sockets.push(socket)
      const pieces: Buffer[] = []
      let length = 0
      socket.on('data', (piece: Buffer) => {
        pieces.push(piece)
        length += piece.length
        if (length >= expected) resolveReceived(Buffer.concat(pieces))
      })
    })
    servers.push(server)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('no TCP address')
    const client = connect({ host: '127.0.0.1', port: address.port, noDelay: true })
    sockets.push(client)
    await new Promise<void>((resolve, reject) => { client.once('connect', resolve).once('error', reject) })
    return { client, received }
  }

  /** Counts the calls into the socket's libuv handle: one per write or writev handed down. */
  function countHandleWrites (socket: Socket): { calls: number } {
    // Node's internal TCP handle; the only place a write's system call is visible from JavaScript.
    const handle = (socket as unknown as { _handle: Record<string, unknown> })._handle
    const counter = { calls: 0 }
    for (const method of ['writeBuffer', 'writev', 'writeLatin1String', 'writeUtf8String']) {
      const original = handle[method]
      if (typeof original !== 'function') continue
      handle[method] = function (this: unknown, ...args: unknown[]) {
        counter.calls++
        return (original as (...a: unknown[]) => unknown).apply(this, args)
      }
    }
    return counter
  }

  function pieces (count: number, size: number): Buffer[] {
    return Array.from({ length: count }, (_, i) => Buffer.alloc(size, i))
  }

  it('sends the small writes of one turn in one call, bytes in order', async () => {
    const small = pieces(20, 30)
    const { client, received } = await socketPair(600)
    batchWrites(client)
    const counter = countHandleWrites(client)
    for (const piece of small) client.write(piece)
    expect(counter.calls).toBe(0)
    expect(await received).toEqual(Buffer.concat(small))
    expect(counter.calls).toBe(1)
  })

  it('sends each write on its own without batching (the control)', async () => {
    const small = pieces(20, 30)
    const { client, received } = await socketPair(600)
    const counter = countHandleWrites(client)
    for (const piece of small) client.write(piece)
    expect(await received).toEqual(Buffer.concat(small))
    expect(counter.calls).toBe(20)
  })

  it('sends a large write at once, with the small writes queued before it', async () => {
    const small = pieces(3, 2)
    const large = Buffer.alloc(64 * 1024, 7)
    const { client, received } = await socketPair(6 + large.length)
    batchWrites(client)
    const counter = countHandleWrites(client)
    for (const piece of small) client.write(piece)
    client.write(large)
    // Handed down before the turn ends: bulk data never waits for the batch.
    expect(counter.calls).toBe(1)
    expect(await received).toEqual(Buffer.concat([...small, large]))
  })

  it('flushes what waits when the socket is ended in the same turn', async () => {
    const small = pieces(5, 10)
    const { client, received } = await socketPair(50)
    batchWrites(client)
    for (const piece of small) client.write(piece)
    client.end()
    expect(await received).toEqual(Buffer.concat(small))
  })

  /** Server-side sockets with their 'data' events counted, and a client that writes one piece per event-loop turn. */
  async function readsOfPiecesOneTurnApart (ticker: ReadTicker | undefined, count: number, oneBuffer = false): Promise<{ reads: number[], bytes: Buffer }> {
    const reads: number[] = []
    const server = createServer()
    servers.push(server)
    const accepted = new Promise<Socket>(resolve => server.once('connection', resolve))
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const client = connect({ host: '127.0.0.1', port, noDelay: true })
    sockets.push(client)
    const socket = await accepted
    sockets.push(socket)
    ticker?.add(socket)
    const all: Buffer[] = []
    let resolveAll!: () => void
    const done = new Promise<void>(resolve => { resolveAll = resolve })
    const onRead = (data: Uint8Array): void => {
      reads.push(data.length)
      // A socket reading into one buffer reuses it: the bytes are copied out at once.
      all.push(Buffer.from(data))
      if (Buffer.concat(all).length === count * PIECE_BYTES) resolveAll()
    }
    if (oneBuffer) readIntoOneBuffer(socket, onRead)
    else socket.on('data', onRead)
    for (let i = 0; i < count; i++) {
      client.write(Buffer.alloc(PIECE_BYTES, i))
      // Two turns: the server's poll phase comes between, so a reading socket reads each piece alone.
      await new Promise(resolve => setImmediate(resolve))
      await new Promise(resolve => setImmediate(resolve))
    }
    await done
    return { reads, bytes: Buffer.concat(all) }
  }

  it('reads what arrives while a socket waits for the tick in one read, bytes in order', async () => {
    const expected = Buffer.concat(Array.from({ length: 10 }, (_, i) => Buffer.alloc(PIECE_BYTES, i)))
    // Long enough that the ten pieces all arrive while the socket waits.
    const { reads, bytes } = await readsOfPiecesOneTurnApart(new ReadTicker(300), 10)
    expect(bytes).toEqual(expected)
    expect(reads.length).toBeLessThanOrEqual(3)
  })

  it('waits for the tick on a socket that reads into one buffer, as a keyed connection does', async () => {
    const expected = Buffer.concat(Array.from({ length: 10 }, (_, i) => Buffer.alloc(PIECE_BYTES, i)))
    const { reads, bytes } = await readsOfPiecesOneTurnApart(new ReadTicker(300), 10, true)
    expect(bytes).toEqual(expected)
    expect(reads.length).toBeLessThanOrEqual(3)
    // The control: the same socket kind without the tick reads each piece alone.
    expect((await readsOfPiecesOneTurnApart(undefined, 10, true)).reads.length).toBeGreaterThanOrEqual(8)
  })

  it('reads each piece alone without the tick (the control)', async () => {
    const { reads } = await readsOfPiecesOneTurnApart(undefined, 10)
    expect(reads.length).toBeGreaterThanOrEqual(8)
  })

  it('keeps reading a socket whose reads are control-sized (requests, credits)', async () => {
    const { client, received } = await socketPair(3 * 100)
    const server = sockets.find(s => s !== client)
    if (server === undefined) throw new Error('no server socket')
    const ticker = new ReadTicker(60_000)
    ticker.add(server)
    for (let i = 0; i < 3; i++) {
      client.write(Buffer.alloc(100, i))
      await new Promise(resolve => setImmediate(resolve))
      await new Promise(resolve => setImmediate(resolve))
    }
    // With a 60 s tick this resolves only if the small reads never made the socket wait.
    expect((await received).length).toBe(300)
    expect(ticker.waitingSockets).toBe(0)
  })

  it('keeps reading a socket whose rate would fill a 64 KiB read within the wait', async () => {
    let written = 0
    const pieces: Buffer[] = []
    const { client, received } = await socketPair(Infinity)
    const server = sockets.find(s => s !== client)
    if (server === undefined) throw new Error('no server socket')
    // A 60 s wait: ~1 byte per ms is "fast"; were the socket to wait, the pieces would not arrive.
    const ticker = new ReadTicker(60_000)
    ticker.add(server)
    let got = 0
    const all = new Promise<void>(resolve => server.on('data', (data: Buffer) => { got += data.length; if (got === written) resolve() }))
    const started = performance.now()
    for (let i = 0; performance.now() - started < 150 || i < 10; i++) {
      // control-sized pieces first, so the rate is measured before any piece could make it wait
      const piece = Buffer.alloc(performance.now() - started < 150 ? 1000 : PIECE_BYTES, i)
      pieces.push(piece)
      written += piece.length
      client.write(piece)
      await new Promise(resolve => setImmediate(resolve))
      await new Promise(resolve => setImmediate(resolve))
    }
    void received
    await all
    expect(got).toBe(written)
    expect(ticker.waitingSockets).toBe(0)
  })

  /**
   * The ticks a slow socket waits after a short read, counted: the ticker's timer and clock are
   * faked (the sockets, the kernel's buffers and libuv's reads are real), so a tick passes only
   * when the test says so and the socket's rate is exactly what the test wrote per fake
   * millisecond. This used to compare the average read sizes of two timed trickles, which a
   * starved process read large either way (it failed under load on the shared box).
   */
  async function ticksWaited (readTargetBytes?: number): Promise<{ ticks: number, wholeRead: boolean }> {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    try {
      const { client } = await socketPair(Infinity)
      const server = sockets.find(s => s !== client && !s.destroyed && s.remotePort === client.localPort)
      if (server === undefined) throw new Error('no server socket')
      const ticker = new ReadTicker(TICK_MS)
      ticker.add(server, { readTargetBytes })
      const reads: number[] = []
      let wakeRead: (() => void) | undefined
      server.on('data', (data: Buffer) => { reads.push(data.length); wakeRead?.() })
      /** Writes one piece; resolves once the kernel has it (on loopback: in the server's receive buffer). */
      const send = async (): Promise<void> => { await new Promise<void>((resolve, reject) => { client.write(Buffer.alloc(PIECE_BYTES), err => { if (err == null) resolve(); else reject(err) }) }) }
      const nextRead = async (): Promise<void> => { await new Promise<void>(resolve => { wakeRead = resolve }) }
      /** A poll phase passes: a socket that reads gets what its kernel buffer holds. */
      const pollPhase = async (): Promise<void> => {
        await new Promise(resolve => setImmediate(resolve))
        await new Promise(resolve => setImmediate(resolve))
      }
      // One piece, read at once: too early for a rate (no whole window yet), so it waits one tick,
      // which passes inside a whole rate window.
      let read = nextRead()
      await send()
      await read
      expect(ticker.waitingSockets).toBe(1)
      vi.advanceTimersByTime(RATE_WINDOW_MS)
      expect(ticker.waitingSockets).toBe(0)
      // The second piece closes the window: two pieces per RATE_WINDOW_MS is the socket's rate.
      read = nextRead()
      await send()
      await read
      expect(ticker.waitingSockets).toBe(1)
      // Now count ticks: a piece arrives during each; the socket reads again only when it is due.
      const readsBefore = reads.length
      let ticks = 0
      let pieces = 0
      while (ticker.waitingSockets > 0 && ticks <= MAX_WAIT_TICKS) {
        await send()
        pieces++
        await pollPhase()
        // Waiting, the socket reads nothing of what its kernel buffer holds.
        expect(reads.length).toBe(readsBefore)
        read = nextRead()
        vi.advanceTimersByTime(TICK_MS)
        ticks++
      }
      // Still waiting past MAX_WAIT_TICKS: no read is coming to wait for.
      if (ticker.waitingSockets > 0) return { ticks, wholeRead: false }
      await read
      const after = reads.slice(readsBefore)
      return { ticks, wholeRead: after.length === 1 && after[0] === pieces * PIECE_BYTES }
    } finally {
      vi.useRealTimers()
    }
  }

  it('lets a slow socket with a read target wait ticks until a read brings about that much, MAX_WAIT_TICKS at most', async () => {
    // Two pieces per RATE_WINDOW_MS: a tick brings 600 bytes at this rate.
    const perTick = 2 * PIECE_BYTES / RATE_WINDOW_MS * TICK_MS
    // Far more than a tick brings: the most ticks, and what arrived meanwhile comes up in one read.
    expect(await ticksWaited(100 * perTick)).toEqual({ ticks: MAX_WAIT_TICKS, wholeRead: true })
    // A target one tick brings, and no target: one tick.
    expect(await ticksWaited(perTick)).toEqual({ ticks: 1, wholeRead: true })
    expect(await ticksWaited(undefined)).toEqual({ ticks: 1, wholeRead: true })
  })

  it('closes cleanly while a socket waits for the tick', async () => {
    const ticker = new ReadTicker(60_000)
    const { client, received } = await socketPair(PIECE_BYTES)
    const server = sockets.find(s => s !== client)
    if (server === undefined) throw new Error('no server socket')
    ticker.add(server)
    client.write(Buffer.alloc(PIECE_BYTES, 1))
    await received
    const closed = new Promise(resolve => server.once('close', resolve))
    client.destroy()
    server.destroy()
    await closed
    expect(ticker.waitingSockets).toBe(0)
  })

  it("batches a daemon's libp2p connections: 200 small messages cost a few write calls, not 400", async () => {
    const [a, b] = [await start(), await start()]
    const protocol = '/shoal-test/small-messages/1.0.0'
    const MESSAGES = 200
    const MESSAGE_BYTES = 40
    let resolveAll!: (bytes: number) => void
    const all = new Promise<number>(resolve => { resolveAll = resolve })
    await b.handle(protocol, (stream) => {
      let bytes = 0
      stream.addEventListener('message', (evt) => {
        bytes += evt.data.byteLength
        if (bytes >= MESSAGES * MESSAGE_BYTES) resolveAll(bytes)
      })
    })
    const address = b.getMultiaddrs()[0]
    if (address === undefined) throw new Error('no listening address')
    const stream = await a.dialProtocol(multiaddr(address.toString()), protocol, { signal: AbortSignal.timeout(10_000) })
    const writesBefore = processWriteCalls()
    // One turn, as a fetcher asking for many chunks or a server answering many requests does.
    for (let i = 0; i < MESSAGES; i++) stream.send(Buffer.alloc(MESSAGE_BYTES, i))
    expect(await all).toBe(MESSAGES * MESSAGE_BYTES)
    // Unbatched, each message is a yamux frame, a noise message and two socket writes (its
    // length, then the ciphertext), and the receiver answers each frame with a window update:
    // ~800 write calls. Batched, each side writes each turn's frames once.
    expect(processWriteCalls() - writesBefore).toBeLessThan(100)
  })
})

/** A piece of a data stream on a slow link: a few TCP segments. */
const PIECE_BYTES = 3000
/** The tick of the counted tests. */
const TICK_MS = 10

/** Write system calls of this process so far (write, writev, pwrite...): /proc/self/io's syscw. */
function processWriteCalls (): number {
  const match = /^syscw: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))
  if (match === null) throw new Error('/proc/self/io has no syscw line')
  return Number(match[1])
}
