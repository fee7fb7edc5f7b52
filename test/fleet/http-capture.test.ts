import { Agent, createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startHttpCapture } from '../../scripts/http-capture.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024
const LAYER_BYTES = 12 * MIB + 5

/**
 * The containerd bench's observer (scripts/http-capture.ts): what a client and a server said to
 * each other on loopback, read from tcpdump's capture, with nothing in the data path.
 */
describe('the HTTP exchanges read from a loopback capture', () => {
  const tempDir = useTempDirs()
  let server: Server
  let port: number
  const layer = Buffer.alloc(LAYER_BYTES, 7)

  beforeEach(async () => {
    server = createServer((req, res) => {
      if (req.url === '/v2/app/manifests/1.0') { res.writeHead(200, { 'content-length': 42 }).end(req.method === 'HEAD' ? undefined : Buffer.alloc(42)); return }
      if (req.url === '/chunked') { res.write('abc'); res.end('def'); return }
      if (req.url === '/missing') { res.writeHead(404, { 'content-length': 0 }).end(); return }
      res.writeHead(200, { 'content-length': layer.length }).end(layer)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })
  afterEach(async () => { await new Promise(resolve => server.close(resolve)) })

  it('sees each request of a keep-alive connection, its status, its body\'s first and last byte, in order', async () => {
    const capture = await startHttpCapture(port, join(await tempDir('shoal-capture-'), 'seen.pcap'))
    // One connection, so the responses follow each other in one byte stream.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const fetch = async (method: string, path: string): Promise<number> => await new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, agent }, res => {
        let bytes = 0
        res.on('data', (data: Buffer) => { bytes += data.length })
        res.on('end', () => { resolve(bytes) })
      })
      req.on('error', reject)
      req.end()
    })
    const received = [
      await fetch('HEAD', '/v2/app/manifests/1.0'),
      await fetch('GET', '/v2/app/blobs/sha256:aa'),
      await fetch('GET', '/chunked'),
      await fetch('GET', '/missing'),
      await fetch('GET', '/v2/app/blobs/sha256:bb'),
    ]
    agent.destroy()
    const seen = await capture.stop()

    expect(received).toEqual([0, LAYER_BYTES, 6, 0, LAYER_BYTES])
    expect(seen.map(r => [r.method, r.url, r.status])).toEqual([
      ['HEAD', '/v2/app/manifests/1.0', 200],
      ['GET', '/v2/app/blobs/sha256:aa', 200],
      ['GET', '/chunked', 200],
      ['GET', '/missing', 404],
      ['GET', '/v2/app/blobs/sha256:bb', 200],
    ])
    const [head, first, chunked, missing, second] = seen
    expect(head?.bytes).toBe(0)
    expect(head?.endedAt).toBe(head?.headersAt)
    for (const blob of [first, second]) {
      expect(blob?.bytes).toBe(LAYER_BYTES)
      expect(blob?.mibAt).toHaveLength(12)
      // asked ≤ head ≤ first byte ≤ each MiB ≤ last byte
      const times = [blob?.startedAt, blob?.headersAt, blob?.firstByteAt, ...blob?.mibAt ?? [], blob?.endedAt]
      expect(times.every(t => typeof t === 'number')).toBe(true)
      expect([...times as number[]].sort((a, b) => a - b)).toEqual(times)
    }
    // A chunked body (its length unknown here) ends where the next response starts.
    expect(chunked?.endedAt).toBeDefined()
    expect(chunked?.endedAt).toBeLessThanOrEqual(missing?.headersAt ?? -1)
    expect(missing?.bytes).toBe(0)
    // The second layer was asked after the first ended: the stream was followed across responses.
    expect(second?.startedAt).toBeGreaterThanOrEqual(first?.endedAt ?? Infinity)
  })

  it('sees one request per connection when each has its own', async () => {
    const capture = await startHttpCapture(port, join(await tempDir('shoal-capture-'), 'seen.pcap'))
    const fetch = async (path: string): Promise<void> => { await (await globalThis.fetch(`http://127.0.0.1:${port}${path}`)).arrayBuffer() }
    await Promise.all([fetch('/v2/app/blobs/sha256:aa'), fetch('/v2/app/blobs/sha256:bb'), fetch('/v2/app/manifests/1.0')])
    const seen = await capture.stop()
    expect(seen.map(r => r.url).sort()).toEqual(['/v2/app/blobs/sha256:aa', '/v2/app/blobs/sha256:bb', '/v2/app/manifests/1.0'])
    expect(seen.every(r => r.endedAt !== undefined && r.status === 200)).toBe(true)
    expect(seen.find(r => r.url.endsWith('bb'))?.bytes).toBe(LAYER_BYTES)
  })
})
