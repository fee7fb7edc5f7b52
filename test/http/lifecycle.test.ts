import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { readdir } from 'node:fs/promises'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createHttpApi, type BlobSource } from '../../src/http/index.js'
import { createBundleManifest, directoryChecksum, encodeBundleManifest, type ManifestEntry } from '../../src/manifest/index.js'
import type { Store } from '../../src/store/index.js'
import { startApi, tempStore } from './helpers.js'

const NAME = '/v2/registry.example.com/team/app'

async function uploadFiles (store: Store): Promise<string[]> {
  return (await readdir(store.layout.tmp)).filter(f => f.startsWith('upload-'))
}

/** Polls a condition every 20 ms for up to 3 s (timers we do not own cannot be awaited directly). */
async function eventually (condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 3000
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within 3 s`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe('registry API lifecycle', () => {
  let stored: Awaited<ReturnType<typeof tempStore>>

  beforeEach(async () => { stored = await tempStore() })
  afterEach(async () => { await stored.close() })

  it('closes in order: aborts requests in flight and waits for them, drops uploads, stops listening', async () => {
    const signals: AbortSignal[] = []
    // A source that never delivers: the request waits on it until close() aborts it.
    const silent: BlobSource = {
      fetchObject: async (_bundle, _object, { signal }) => {
        signals.push(signal)
        await new Promise((_resolve, reject) => { signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true }) })
      },
    }
    // A bundle naming one blob whose object this store does not hold.
    const sha = 'b'.repeat(64)
    await addBundleNaming(stored.store, 'a'.repeat(64), sha)
    const running = await startApi({ store: stored.store, blobSource: silent }, { allowPush: true })
    const location = (await fetch(`${running.base}${NAME}/blobs/uploads/`, { method: 'POST' })).headers.get('location') ?? ''
    await fetch(running.base + location, { method: 'PATCH', body: 'some bytes' })
    expect(await uploadFiles(stored.store)).toHaveLength(1)

    const waiting = fetch(`${running.base}/v2/registry.example.com/team/app/blobs/sha256:${sha}`)
    await eventually(async () => signals.length === 1, 'the blob source call')
    await running.api.close()
    expect(signals[0]?.aborted).toBe(true)
    // Aborted before it started, the request was answered (503) or cut; either way it is over.
    const outcome = await waiting.then(r => r.status, () => 'cut')
    expect([503, 'cut']).toContain(outcome)
    expect(await uploadFiles(stored.store)).toEqual([])
    await expect(fetch(`${running.base}/v2/`)).rejects.toThrow()
  })

  it('cuts a request body that stalls, and keeps what arrived for a resume', async () => {
    const running = await startApi({ store: stored.store }, { allowPush: true, bodyIdleTimeoutMs: 200 })
    const location = (await fetch(`${running.base}${NAME}/blobs/uploads/`, { method: 'POST' })).headers.get('location') ?? ''
    const { port } = new URL(running.base)
    const socket = connect(Number(port), '127.0.0.1')
    const closed = new Promise<void>(resolve => { socket.on('close', () => { resolve() }) })
    socket.on('error', () => {})
    socket.write(`PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789`)
    const started = Date.now()
    await closed
    expect(Date.now() - started).toBeLessThan(2000)
    const status = await fetch(running.base + location)
    expect(status.headers.get('range')).toBe('0-9')
    await running.api.close()
  })

  it('drops an upload nobody touches, with its staging file', async () => {
    const running = await startApi({ store: stored.store }, { allowPush: true, uploadSessionIdleMs: 100 })
    const location = (await fetch(`${running.base}${NAME}/blobs/uploads/`, { method: 'POST' })).headers.get('location') ?? ''
    expect(await uploadFiles(stored.store)).toHaveLength(1)
    await eventually(async () => (await uploadFiles(stored.store)).length === 0, 'the idle upload drop')
    expect((await fetch(running.base + location)).status).toBe(404)
    await running.api.close()
  })

  it('serves from a server of someone else\'s (the daemon mounts the handler)', async () => {
    const api = createHttpApi({ store: stored.store })
    const server = createServer(api.handler)
    await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
    const { port } = server.address() as AddressInfo
    const response = await fetch(`http://127.0.0.1:${port}/v2/`)
    expect(response.status).toBe(200)
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0')
    await api.close()
    await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  })
})

/** Records a bundle (as a peer's manifest would arrive) whose one blob, `blobs/sha256/<sha>`, is `object`. */
async function addBundleNaming (store: Store, object: string, sha: string): Promise<void> {
  const file: ManifestEntry = { type: 'F', perms: '644', checksum: object, size: 5, path: `./blobs/sha256/${sha}` }
  const dir = (path: string, child: ManifestEntry): ManifestEntry => ({ type: 'D', perms: '755', checksum: directoryChecksum([child.checksum]), size: child.size, path })
  const shaDir = dir('./blobs/sha256/', file)
  const blobsDir = dir('./blobs/', shaDir)
  await store.addBundle(encodeBundleManifest(createBundleManifest([dir('./', blobsDir), blobsDir, shaDir, file], new Map())))
}
