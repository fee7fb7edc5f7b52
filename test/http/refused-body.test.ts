import { mkdtemp, rm } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { REFUSED_BODY_DRAIN_BYTES } from '../../src/http/constants.js'
import { openStore, type Store } from '../../src/store/index.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { objectCount, startApi, type RunningApi } from './helpers.js'

const MIB = 1024 * 1024
const QUOTA_BYTES = MIB
const WAIT_MS = 30_000

/** A raw HTTP/1.1 client: Node's own would stop sending at the answer, and the point is a client that does not. */
class RawClient {
  readonly socket: Socket
  /** The first socket error (a reset, a broken pipe), if any. */
  error: Error | undefined
  private received = Buffer.alloc(0)
  private readonly closed: Promise<void>

  /** A loopback port, or a Unix socket's path. */
  constructor (where: number | string) {
    this.socket = typeof where === 'number' ? connect(where, '127.0.0.1') : connect(where)
    this.socket.on('data', (piece: Buffer) => { this.received = Buffer.concat([this.received, piece]) })
    this.socket.on('error', (err) => { this.error ??= err })
    this.closed = new Promise(resolve => { this.socket.once('close', () => { resolve() }) })
  }

  /** Writes `bytes` of body, a piece at a time as the socket drains; stops at a socket error. */
  async send (bytes: number, options: { chunked?: boolean } = {}): Promise<void> {
    const data = Buffer.alloc(256 * 1024)
    // Transfer-Encoding: chunked frames each piece with its size (RFC 9112 §7.1).
    const piece = options.chunked === true ? Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]) : data
    for (let sent = 0; sent < bytes && this.error === undefined && !this.socket.destroyed; sent += data.length) {
      if (!this.socket.write(piece)) await this.drained()
    }
  }

  private async drained (): Promise<void> {
    await new Promise<void>(resolve => {
      const done = (): void => {
        this.socket.off('drain', done)
        this.socket.off('close', done)
        resolve()
      }
      this.socket.once('drain', done)
      this.socket.once('close', done)
    })
  }

  /** The whole answer (status, headers and a Content-Length body), once it has arrived. */
  async answer (): Promise<{ status: number, headers: string, body: string }> {
    return await new Promise((resolve, reject) => {
      const check = (): void => {
        const end = this.received.indexOf('\r\n\r\n')
        if (end < 0) return
        const headers = this.received.subarray(0, end).toString()
        const length = Number(/content-length: (\d+)/i.exec(headers)?.[1] ?? 0)
        if (this.received.length < end + 4 + length) return
        cleanup()
        resolve({ status: Number(headers.split(' ')[1]), headers, body: this.received.subarray(end + 4, end + 4 + length).toString() })
      }
      const closed = (): void => { cleanup(); reject(new Error(`the connection closed before a whole answer (${this.error?.message ?? 'no error'})`)) }
      const timer = setTimeout(() => { cleanup(); reject(new Error('no whole answer in time')) }, WAIT_MS)
      const cleanup = (): void => {
        clearTimeout(timer)
        this.socket.off('data', check)
        this.socket.off('close', closed)
      }
      // After the constructor's listener, which appends each piece first.
      this.socket.on('data', check)
      this.socket.once('close', closed)
      check()
    })
  }

  async closedByServer (): Promise<void> {
    await Promise.race([this.closed, new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('the server never closed the connection')) }, WAIT_MS).unref())])
  }
}

describe('a refused request body', () => {
  let dir: string
  let store: Store
  let running: RunningApi
  let client: RawClient | undefined

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-refused-body-'))
    store = await openStore({ dir, fsync: false, quotaBytes: QUOTA_BYTES })
    running = await startApi({ store }, { allowPush: true })
  })

  afterEach(async () => {
    client?.socket.destroy()
    await running.api.close()
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('is answered while the client still sends, and read on so the client gets the answer, not a reset; past the bound the connection closes', async () => {
    const port = Number(new URL(running.base).port)
    client = new RawClient(port)
    const blobBytes = 1024 * MIB
    client.socket.write(`POST /v2/team/app/blobs/uploads/?digest=sha256:${'0'.repeat(64)} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `Content-Type: application/octet-stream\r\nContent-Length: ${blobBytes}\r\n\r\n`)
    const sending = client.send(MIB)
    const answer = await client.answer()
    await sending
    expect(answer.status).toBe(400)
    expect(JSON.parse(answer.body)).toMatchObject({ errors: [{ code: 'SIZE_INVALID' }] })
    expect(answer.body).toContain('quota (--quota)')
    // A client that goes on sending after the answer (as Go's HTTP client does until it reads
    // it) meets no reset: the daemon reads and drops what follows.
    await client.send(8 * MIB)
    expect(client.error).toBeUndefined()
    expect(client.socket.destroyed).toBe(false)
    // Bounded: past REFUSED_BODY_DRAIN_BYTES the daemon closes the connection.
    await client.send(REFUSED_BODY_DRAIN_BYTES)
    await client.closedByServer()
    expect(await objectCount(dir)).toBe(0)
  })
  it('is read on after the answer, not cut, when the client asked to close the connection after it (as the CLI does)', async () => {
    const port = Number(new URL(running.base).port)
    client = new RawClient(port)
    client.socket.write(`POST /v2/team/app/blobs/uploads/?digest=sha256:${'0'.repeat(64)} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `Content-Type: application/octet-stream\r\nContent-Length: ${1024 * MIB}\r\nConnection: close\r\n\r\n`)
    const sending = client.send(MIB)
    const answer = await client.answer()
    await sending
    expect(answer.status).toBe(400)
    expect(answer.headers).toMatch(/connection: close/i)
    // Node closes such a connection as soon as the answer is out; with our bytes unread, the
    // writes that follow met a reset (a client that wrote before it read lost the answer).
    await client.send(8 * MIB)
    expect(client.error).toBeUndefined()
    expect(client.socket.destroyed).toBe(false)
  })

  it('is answered, not cut, when a chunked body grows past the quota as it arrives', async () => {
    const port = Number(new URL(running.base).port)
    client = new RawClient(port)
    client.socket.write(`POST /v2/team/app/blobs/uploads/?digest=sha256:${'0'.repeat(64)} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      'Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n')
    const sending = client.send(4 * MIB, { chunked: true })
    const answer = await client.answer()
    await sending
    expect(answer.status).toBe(400)
    expect(answer.body).toContain('quota (--quota)')
    expect(client.error).toBeUndefined()
    expect(await objectCount(dir)).toBe(0)
  })
})

describe('a refused body on a running daemon', () => {
  let work: string
  let daemon: DaemonProcess
  let client: RawClient | undefined

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-refused-push-'))
    daemon = await startDaemonProcess(join(work, 'node'), ['--no-mdns', '--allow-push', '--quota', String(QUOTA_BYTES)])
  }, 120_000)

  afterAll(async () => {
    await daemon?.stop()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  afterEach(() => {
    client?.socket.destroy()
  })

  it('is answered and read on over the control socket while the CLI-like client still sends: no broken pipe', async () => {
    client = new RawClient(daemon.api)
    // As `shoal push` of an archive asks: one request per connection.
    client.socket.write(`POST /api/v1/push?kind=archive HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-tar\r\n` +
      `Content-Length: ${1024 * MIB}\r\nConnection: close\r\n\r\n`)
    const sending = client.send(2 * QUOTA_BYTES)
    const answer = await client.answer()
    await sending
    expect(answer.status).toBe(413)
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'ARCHIVE_TOO_LARGE' } })
    // The push read its body through a stand-in whose end paused the request: the daemon then
    // read nothing more, and the client's writes stalled until the drain's time ran out.
    await client.send(8 * MIB)
    expect(client.error).toBeUndefined()
    expect(client.socket.destroyed).toBe(false)
  })

  it('counts as answered, with its status, when the client leaves while the body drains', async () => {
    const [host = '', port = ''] = daemon.registry.split(':')
    expect(host).toBe('127.0.0.1')
    client = new RawClient(Number(port))
    client.socket.write(`POST /v2/team/app/blobs/uploads/?digest=sha256:${'0'.repeat(64)} HTTP/1.1\r\nHost: ${daemon.registry}\r\n` +
      `Content-Type: application/octet-stream\r\nContent-Length: ${1024 * MIB}\r\n\r\n`)
    const sending = client.send(2 * QUOTA_BYTES)
    const answer = await client.answer()
    await sending
    expect(answer.status).toBe(400)
    client.socket.destroy()
    const counted = await waitFor('the refused upload to be counted', async () => {
      const text = await (await fetch(`http://${daemon.registry}/metrics`)).text()
      const count = (status: string): number => [...text.matchAll(new RegExp(`^shoal_http_requests_total\\{route="[^"]+",method="POST",status="${status}"\\} (\\d+)$`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0)
      return count('400') + count('aborted') > 0 ? { answered: count('400'), aborted: count('aborted') } : undefined
    })
    expect(counted).toEqual({ answered: 1, aborted: 0 })
  })
})
