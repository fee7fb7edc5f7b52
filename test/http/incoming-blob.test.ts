import { createHash, randomBytes } from 'node:crypto'
import { request, type IncomingMessage } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { GrowingFile } from '../../src/store/index.js'
import type { ContentSources } from '../../src/http/index.js'
import { startApi, tempStore, type RunningApi } from './helpers.js'

const MIB = 1024 * 1024

/**
 * A response, read only as the test says (a paused one fills the sockets and the server's
 * writes wait). Each on a connection of its own: a range response ends only once the blob is
 * verified, and a request behind it on a kept-alive connection would wait for that.
 */
async function get (url: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  return await new Promise((resolve, reject) => {
    request(url, { headers, agent: false }, resolve).on('error', reject).end()
  })
}

async function bodyOf (response: IncomingMessage): Promise<Buffer> {
  const pieces: Buffer[] = []
  for await (const piece of response) pieces.push(piece as Buffer)
  return Buffer.concat(pieces)
}

/**
 * A blob still arriving from a pull-through (an IncomingBlob: a GrowingFile's reader), served
 * through the response's few reused buffers (BodyWriter). A buffer filled again before the
 * socket had written it would put later bytes where earlier ones belong.
 */
describe('registry API, a blob streamed in from a pull-through', () => {
  let dir: string
  let edge: Awaited<ReturnType<typeof tempStore>>
  let running: RunningApi | undefined
  const files: GrowingFile[] = []

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-incoming-'))
    edge = await tempStore()
  })

  afterEach(async () => {
    await running?.api.close()
    running = undefined
    for (const file of files.splice(0)) await file.writerFinished()
    await edge.close()
    await rm(dir, { recursive: true, force: true })
  })

  /** Serves `blob` as it arrives (`written` bytes of it so far); `reads` hears of every buffer the response reads into. */
  async function serve (blob: Buffer, written: number, reads?: (into: Uint8Array) => void): Promise<{ url: string, file: GrowingFile }> {
    const file = await GrowingFile.create(join(dir, `staging-${files.length}`), blob.byteLength)
    files.push(file)
    await file.append(blob.subarray(0, written))
    const sources: ContentSources = {
      resolveTag: async () => undefined,
      locate: async () => {
        const reader = file.reader()
        return {
          ...reader,
          readInto: async (into, options) => {
            const bytes = await reader.readInto(into, options)
            reads?.(into)
            return bytes
          },
        }
      },
    }
    running = await startApi({ store: edge.store, sources })
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
    return { url: `${running.base}/v2/registry.example.com/app/blobs/${digest}`, file }
  }

  it('sends every byte in order to a client that stops reading for a while, the writes waiting on the socket', async () => {
    // Far more than the response's buffers hold, and an odd size: the last read is short.
    const blob = randomBytes(24 * MIB + 12_345)
    const buffers = new Set<ArrayBufferLike>()
    let reads = 0
    let wake = (): void => {}
    const { url, file } = await serve(blob, 6 * MIB, (into) => {
      buffers.add(into.buffer)
      reads++
      wake()
    })
    const response = await get(url)
    expect(response.statusCode).toBe(200)
    // Not reading: the sockets fill, and the response's buffers, all read into, wait with them.
    response.pause()
    await file.append(blob.subarray(6 * MIB))
    await new Promise<void>((resolve) => {
      wake = () => { if (reads >= 4) resolve() }
      wake()
    })
    file.complete()
    response.resume()
    const body = await bodyOf(response)
    expect(body.byteLength).toBe(blob.byteLength)
    expect(body.equals(blob)).toBe(true)
    // 25 reads or more into the same few buffers: each was filled again only after the socket had it.
    expect(reads).toBeGreaterThanOrEqual(25)
    expect(buffers.size).toBeLessThanOrEqual(4)
  })

  it('answers a Range with exactly those bytes, and holds back the blob\'s last byte until it is verified', async () => {
    const blob = randomBytes(5 * MIB + 7)
    const { url, file } = await serve(blob, blob.byteLength)
    const middle = await get(url, { range: `bytes=${MIB - 3}-${3 * MIB + 2}` })
    expect(middle.statusCode).toBe(206)
    expect((await bodyOf(middle)).equals(blob.subarray(MIB - 3, 3 * MIB + 3))).toBe(true)

    const tail = await get(url, { range: `bytes=${blob.byteLength - 10}-` })
    expect(tail.statusCode).toBe(206)
    const got: Buffer[] = []
    let received = 0
    const arrived = new Promise<void>((resolve) => {
      tail.on('data', (piece: Buffer) => {
        got.push(piece)
        received += piece.byteLength
        if (received === 9) resolve()
      })
    })
    await arrived
    // Everything but the last byte; the last comes once the writer says the whole blob matched.
    expect(received).toBe(9)
    const ended = new Promise<void>((resolve) => { tail.on('end', resolve) })
    file.complete()
    await ended
    expect(Buffer.concat(got).equals(blob.subarray(blob.byteLength - 10))).toBe(true)
  })
})
