import { mkdir, writeFile } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { pushThroughDaemon } from '../../src/cli/bundle-transfer.js'
import { send, type DaemonApi } from '../../src/cli/daemon-client.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024
/** Far more than any socket and stream buffers between the client and the stand-in daemon hold. */
const KEPT_SENDING_BYTES = 32 * MIB
const REFUSAL = JSON.stringify({ error: { code: 'ARCHIVE_TOO_LARGE', message: 'the tree holds more than 5242880 bytes, more than this store takes' } })

/** `bytes` of zeros, made as they are read: a push far larger than anything is meant to take of it. */
function zeros (bytes: number): Readable {
  let left = bytes
  return new Readable({
    read () {
      const piece = Math.min(64 * 1024, left)
      left -= piece
      this.push(piece === 0 ? null : Buffer.alloc(piece))
    },
  })
}

/** Calls `onHead` with the socket once a request's head has arrived, and `onBody` with each body byte count after it. */
function onRequest (socket: Socket, handlers: { onHead: () => void, onBody?: (bytes: number) => void }): void {
  let head = Buffer.alloc(0)
  let headDone = false
  socket.on('data', (piece: Buffer) => {
    if (headDone) {
      handlers.onBody?.(piece.length)
      return
    }
    head = Buffer.concat([head, piece])
    const end = head.indexOf('\r\n\r\n')
    if (end < 0) return
    headDone = true
    handlers.onHead()
    if (head.length > end + 4) handlers.onBody?.(head.length - end - 4)
  })
  socket.on('error', () => {})
}

/**
 * The CLI's side of a daemon request (src/cli/daemon-client.ts send, and the push through it),
 * against stand-in daemons on a Unix socket that answer or fail at chosen moments.
 */
describe('a request to the daemon that sends a body', () => {
  const tempDir = useTempDirs()
  let server: Server | undefined

  afterEach(async () => {
    server?.close()
    server = undefined
  })

  async function standIn (onConnection: (socket: Socket) => void): Promise<DaemonApi> {
    const path = join(await tempDir('shoal-daemon-client-'), 'api.sock')
    const listening = createServer(onConnection)
    server = listening
    await new Promise<void>(resolve => { listening.listen(path, resolve) })
    return { address: { kind: 'socket', path } }
  }

  it('stops sending and closes its side when the daemon refuses it while it is still sent (RFC 9112 §9.3)', async () => {
    let outcome: (seen: { ended: boolean, afterAnswer: number }) => void = () => {}
    const seen = new Promise<{ ended: boolean, afterAnswer: number }>(resolve => { outcome = resolve })
    const api = await standIn(socket => {
      let afterAnswer = 0
      onRequest(socket, {
        onHead: () => {
          socket.write(`HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: ${REFUSAL.length}\r\nConnection: close\r\n\r\n${REFUSAL}`)
        },
        onBody: bytes => {
          afterAnswer += bytes
          if (afterAnswer >= KEPT_SENDING_BYTES) {
            outcome({ ended: false, afterAnswer })
            socket.destroy()
          }
        },
      })
      // The client's side closed: what it sent before is all read by now (a stream keeps order).
      socket.once('end', () => {
        outcome({ ended: true, afterAnswer })
        socket.end()
      })
    })
    const body = zeros(1024 * MIB)
    // The answer is left unread until the daemon has seen the client's side close: that must
    // follow the answer's arrival, not wait for someone to read it. (Node alone stalls a piped
    // body once an answer has come, ~256 KiB on, but neither ends nor closes it: without the
    // close this test waits out its timeout.)
    const response = await send(api, 'POST', '/api/v1/push?kind=tree', { type: 'application/x-tar', stream: body })
    const result = await seen
    expect(result.ended).toBe(true)
    expect(result.afterAnswer).toBeLessThan(KEPT_SENDING_BYTES)
    expect(response.statusCode).toBe(413)
    let text = ''
    for await (const piece of response) text += (piece as Buffer).toString()
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'ARCHIVE_TOO_LARGE' } })
    body.destroy()
  })

  it('reports a push whose connection the daemon closed before any answer was read as a lost connection, not the pipe it broke', async () => {
    const api = await standIn(socket => {
      let received = 0
      onRequest(socket, {
        onHead: () => {},
        onBody: bytes => {
          received += bytes
          // Gone mid-body without an answer the client could read (a daemon that closed at
          // once after answering looked the same when the client wrote before it read).
          if (received >= MIB) socket.destroy()
        },
      })
    })
    const tree = await tempDir('shoal-daemon-client-tree-')
    await mkdir(join(tree, 'dir'))
    await writeFile(join(tree, 'dir', 'layer.bin'), Buffer.alloc(16 * MIB, 7))
    const pushed = pushThroughDaemon(api, tree, [], new AbortController().signal)
    await expect(pushed).rejects.toMatchObject({ code: 'DAEMON_CONNECTION_LOST' })
    await expect(pushed).rejects.toThrow(/closed the connection before its answer was read .*its log says why/)
  })
})
