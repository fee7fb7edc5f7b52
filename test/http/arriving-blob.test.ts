import { readFile } from 'node:fs/promises'
import { afterEach, beforeAll, afterAll, beforeEach, describe, expect, it } from 'vitest'
import type { Store } from '../../src/store/index.js'
import { CopyingSource, MIB } from './copying-source.js'
import { expectRegistryError, pushLayouts, readBlob, startApi, tempImages, tempStore, topDigest, type RunningApi } from './helpers.js'

const REF = 'registry.example.com/shoal/app1:1.0'

/** Reads a body as it arrives, so a test can wait for a byte count. */
function collect (response: Response): { received: () => number, waitFor: (bytes: number) => Promise<void>, done: Promise<Buffer> } {
  const pieces: Buffer[] = []
  let received = 0
  let wake: (() => void) | undefined
  const reader = response.body?.getReader()
  const done = (async () => {
    for (;;) {
      const next = await reader?.read()
      if (next === undefined || next.done) break
      pieces.push(Buffer.from(next.value))
      received += next.value.length
      wake?.()
    }
    return Buffer.concat(pieces)
  })()
  const waitFor = async (bytes: number): Promise<void> => {
    const deadline = Date.now() + 5000
    while (received < bytes) {
      if (Date.now() > deadline) throw new Error(`only ${received} of ${bytes} bytes arrived in 5 s`)
      await new Promise<void>(resolve => { wake = resolve; setTimeout(resolve, 100) })
    }
  }
  return { received: () => received, waitFor, done }
}

/** Waits for `holds` (looked at on every turn of the event loop), failing after 5 s. */
async function until (holds: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (!holds()) {
    if (Date.now() > deadline) throw new Error(`not within 5 s: ${what}`)
    await new Promise<void>(resolve => { setImmediate(resolve) })
  }
}

async function chunkStored (store: Store, object: string, index: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`chunk ${index} was not stored within 5 s`)) }, 5000)
    const listener = (detail: { object: string, index: number }): void => {
      if (detail.object !== object || detail.index !== index) return
      clearTimeout(timer)
      store.off('chunk:stored', listener)
      resolve()
    }
    store.on('chunk:stored', listener)
  })
}

async function objectComplete (store: Store, object: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`object ${object} was not complete within 5 s`)) }, 5000)
    const listener = (detail: { object: string }): void => {
      if (detail.object !== object) return
      clearTimeout(timer)
      store.off('object:complete', listener)
      resolve()
    }
    store.on('object:complete', listener)
  })
}

describe('registry API, blobs still arriving', () => {
  let images: Awaited<ReturnType<typeof tempImages>>
  let origin: Awaited<ReturnType<typeof tempStore>>
  let bundleId: string
  let encoded: Uint8Array
  let edge: Awaited<ReturnType<typeof tempStore>>
  let source: CopyingSource
  let running: RunningApi | undefined
  let layer: { digest: string, size: number, object: string, bytes: Buffer }

  beforeAll(async () => {
    images = await tempImages()
    origin = await tempStore()
    await pushLayouts(origin.store, images.images, ['app1'])
    bundleId = (await origin.store.getRef(REF))?.bundleId ?? ''
    encoded = await origin.store.getEncodedBundle(bundleId) ?? new Uint8Array()
    const { digest, size } = images.images.baseLayer
    layer = { digest, size, object: await origin.store.objectBySha256(digest.slice(7)) ?? '', bytes: await readBlob(images.images.layouts.app1 ?? '', digest) }
  })

  afterAll(async () => {
    await origin?.close()
    await images?.close()
  })

  // The edge knows the bundle (its manifest came from a peer) and the ref, but holds no object yet.
  beforeEach(async () => {
    edge = await tempStore()
    await edge.store.addBundle(encoded, { expectedId: bundleId })
    await edge.store.setRef({ ref: REF, bundleId, manifestDigest: await topDigest(images.images.layouts.app1 ?? ''), at: Date.now() })
    source = new CopyingSource(origin.store, edge.store)
  })

  afterEach(async () => {
    await running?.api.close()
    running = undefined
    await edge.close()
  })

  const blobUrl = (): string => `${running?.base ?? ''}/v2/registry.example.com/shoal/app1/blobs/${layer.digest}`

  it('streams a blob as its chunks arrive, in order, even when they arrive out of order', async () => {
    expect(layer.size).toBeGreaterThan(3 * MIB)
    running = await startApi({ store: edge.store, blobSource: source })
    source.order = () => [1, 0, 3, 2]
    const responding = fetch(blobUrl())
    source.gate.allow() // chunk 1: nothing can be sent before chunk 0
    await chunkStored(edge.store, layer.object, 1)
    source.gate.allow() // chunk 0: the response starts, chunks 0 and 1 flow
    const response = await responding
    expect(response.status).toBe(200)
    expect(response.headers.get('content-length')).toBe(String(layer.size))
    expect(response.headers.get('docker-content-digest')).toBe(layer.digest)
    const body = collect(response)
    await body.waitFor(2 * MIB)
    source.gate.allow() // chunk 3: held back, chunk 2 is still missing
    await chunkStored(edge.store, layer.object, 3)
    expect(body.received()).toBe(2 * MIB)
    // The last chunk may reach the client from its verified bytes, before its commit.
    const completed = objectComplete(edge.store, layer.object)
    source.gate.allow() // chunk 2: the rest flows
    expect((await body.done).equals(layer.bytes)).toBe(true)
    expect(source.calls).toHaveLength(1)
    expect(source.calls[0]).toMatchObject({ bundleId, object: layer.object })
    await completed
    expect(await edge.store.hasObject(layer.object)).toBe(true)
  })

  for (const directIo of [false, true]) {
    it(`sends the chunks that arrive while the client reads from their verified bytes${directIo ? ' (direct-I/O store, lent buffers)' : ''}`, async () => {
      const chunks = Math.ceil(layer.size / MIB)
      expect(chunks).toBeGreaterThanOrEqual(3)
      const store = directIo ? await tempStore({ directIo: true }) : edge
      try {
        if (directIo) {
          await store.store.addBundle(encoded, { expectedId: bundleId })
          await store.store.setRef({ ref: REF, bundleId, manifestDigest: await topDigest(images.images.layouts.app1 ?? ''), at: Date.now() })
        }
        const copying = directIo ? new CopyingSource(origin.store, store.store) : source
        running = await startApi({ store: store.store, blobSource: copying })
        const reads: number[] = []
        const readChunk = store.store.readChunk.bind(store.store)
        store.store.readChunk = async (hash, index, options) => {
          if (hash === layer.object) reads.push(index)
          return await readChunk(hash, index, options)
        }
        copying.gate.allow() // chunk 0: caught as it is verified, as the rest
        const body = collect(await fetch(blobUrl()))
        for (let index = 1; index < chunks; index++) {
          await body.waitFor(index * MIB)
          copying.gate.allow()
        }
        expect((await body.done).equals(layer.bytes)).toBe(true)
        expect(reads).toEqual([])
        if (directIo) await until(() => store.store.readBuffersLent === 0, 'every lent buffer back')
      } finally {
        if (directIo) {
          await running?.api.close()
          running = undefined
          await store.close()
        }
      }
    })
  }

  it('sends a one-chunk blob (an image\'s config) from its verified bytes, not read back once written', async () => {
    const layout = images.images.layouts.app1 ?? ''
    const manifest = JSON.parse((await readBlob(layout, await topDigest(layout))).toString('utf8')) as { config: { digest: string } }
    const config = { digest: manifest.config.digest, bytes: await readBlob(layout, manifest.config.digest) }
    const object = await origin.store.objectBySha256(config.digest.slice(7))
    expect(config.bytes.byteLength).toBeLessThan(MIB)
    running = await startApi({ store: edge.store, blobSource: source })
    const reads: string[] = []
    const readChunk = edge.store.readChunk.bind(edge.store)
    edge.store.readChunk = async (hash, index, options) => {
      reads.push(hash)
      return await readChunk(hash, index, options)
    }
    source.gate.allow(Infinity)
    const response = await fetch(`${running.base}/v2/registry.example.com/shoal/app1/blobs/${config.digest}`)
    expect(response.status).toBe(200)
    expect(Buffer.from(await response.arrayBuffer()).equals(config.bytes)).toBe(true)
    expect(source.calls).toMatchObject([{ object }])
    expect(reads.filter(hash => hash === object)).toEqual([])
  })

  it('says at debug level where the response waited: for the swarm while the next chunk was held back', async () => {
    const lines: Array<Record<string, unknown>> = []
    const logger = { debug: (msg: string, fields?: Record<string, unknown>) => { lines.push({ msg, ...fields }) }, info: () => {}, warn: () => {}, error: () => {} }
    running = await startApi({ store: edge.store, blobSource: source }, { logger })
    const responding = fetch(blobUrl())
    source.gate.allow() // chunk 0 only: the response sends it, then waits for chunk 1
    const body = collect(await responding)
    await body.waitFor(MIB)
    // The response was waiting for chunk 1 before the client had chunk 0, and until it was stored.
    const held = performance.now()
    const stored = chunkStored(edge.store, layer.object, 1)
    source.gate.allow(Infinity)
    await stored
    const heldMs = performance.now() - held
    expect((await body.done).equals(layer.bytes)).toBe(true)
    await until(() => lines.some(l => l.msg === 'blob still arriving: body sent'), 'the response\'s debug line')
    const sent = lines.find(l => l.msg === 'blob still arriving: body sent') ?? {}
    expect(sent.chunks).toBe(Math.ceil(layer.size / MIB))
    expect(sent.swarmMs).toBeGreaterThanOrEqual(Math.floor(heldMs))
    expect(sent.swarmWaits).toBeGreaterThanOrEqual(heldMs > 2 ? 1 : 0)
    for (const key of ['socketMs', 'socketWaits', 'readMs', 'socketIdleMs']) expect(sent[key]).toBeGreaterThanOrEqual(0)
  })

  it('answers a Range of a blob still arriving with 206 and exactly those bytes', async () => {
    running = await startApi({ store: edge.store, blobSource: source })
    source.gate.allow(Infinity)
    const response = await fetch(blobUrl(), { headers: { Range: `bytes=${MIB - 5}-${2 * MIB + 5}` } })
    expect(response.status).toBe(206)
    expect(response.headers.get('content-range')).toBe(`bytes ${MIB - 5}-${2 * MIB + 5}/${layer.size}`)
    expect(Buffer.from(await response.arrayBuffer()).equals(layer.bytes.subarray(MIB - 5, 2 * MIB + 6))).toBe(true)
  })

  it('serves a manifest it knows of but does not hold, once the source has fetched it', async () => {
    running = await startApi({ store: edge.store, blobSource: source })
    source.gate.allow(Infinity)
    const response = await fetch(`${running.base}/v2/registry.example.com/shoal/app1/manifests/1.0`)
    const app1 = images.images.layouts.app1 ?? ''
    expect(response.status).toBe(200)
    expect(Buffer.from(await response.arrayBuffer()).equals(await readBlob(app1, await topDigest(app1)))).toBe(true)
  })

  it('answers 404 BLOB_UNKNOWN fast when the source cannot get the blob', async () => {
    running = await startApi({ store: edge.store, blobSource: source })
    source.failAfter = 0
    source.gate.allow(Infinity)
    const started = performance.now()
    await expectRegistryError(await fetch(blobUrl()), 'BLOB_UNKNOWN')
    expect(performance.now() - started).toBeLessThan(1000)
  })

  it('answers 404 when the source sends nothing before the first-chunk timeout, and stops the fetch', async () => {
    running = await startApi({ store: edge.store, blobSource: source }, { firstChunkTimeoutMs: 200 })
    await expectRegistryError(await fetch(blobUrl()), 'BLOB_UNKNOWN')
    expect(source.calls[0]?.signal.aborted).toBe(true)
  })

  it('keeps a blob queued behind another object of its bundle waiting while that one arrives, past the first-chunk timeout (issue 8)', async () => {
    // What containerd met through a cold edge: it asks for a small layer while the swarm
    // fetches the 512 MiB layer of the same bundle first. Chunks of that layer keep coming,
    // each well within the first-chunk timeout, all of them together well past it: the small
    // layer must come after them, not be a 404 for a blob the fleet holds.
    // Each chunk must be stored within the timeout of the one before, and the pace below leaves
    // half of it for the store's write (read, write, fdatasync, the bitmap's put): at 800 ms a
    // write took up to 627 ms here at load 16-22 (a chunk stored 1,028 ms after the pace began),
    // and under load ~10 the request got its 404 once. The production timeout is 10 s
    // (FIRST_CHUNK_TIMEOUT_MS); 3 s keeps the test short and a write's 1.5 s far above any seen.
    const firstChunkTimeoutMs = 3000
    const manifest = JSON.parse((await readBlob(images.images.layouts.app1 ?? '', await topDigest(images.images.layouts.app1 ?? ''))).toString()) as { layers: Array<{ digest: string }> }
    const small = manifest.layers.find(l => l.digest !== layer.digest)?.digest ?? ''
    const smallObject = await origin.store.objectBySha256(small.slice(7)) ?? ''
    expect(smallObject).not.toBe('')
    const chunks = Math.ceil(layer.size / MIB)
    expect(chunks).toBeGreaterThanOrEqual(4)
    running = await startApi({ store: edge.store, blobSource: source }, { firstChunkTimeoutMs })
    const responding = fetch(`${running.base}/v2/registry.example.com/shoal/app1/blobs/${small}`)
    // The big layer arrives first, a chunk every half timeout (a pace, not a synchronisation:
    // the request is waiting on store events, and this makes 2+ timeouts pass in all).
    for (let index = 0; index < chunks; index++) {
      await new Promise(resolve => setTimeout(resolve, firstChunkTimeoutMs / 2))
      await edge.store.writeChunk(bundleId, layer.object, index, await origin.store.readChunk(layer.object, index))
    }
    expect(await edge.store.hasObject(layer.object)).toBe(true)
    expect(await edge.store.hasObject(smallObject)).toBe(false)
    source.gate.allow(Infinity) // now the small layer's turn
    const response = await responding
    expect(response.status).toBe(200)
    expect(Buffer.from(await response.arrayBuffer()).equals(await readBlob(images.images.layouts.app1 ?? '', small))).toBe(true)
  })

  it('answers 404 for a blob not held when there is no source, and HEAD only for blobs held whole', async () => {
    running = await startApi({ store: edge.store })
    await expectRegistryError(await fetch(blobUrl()), 'BLOB_UNKNOWN')
    await expectRegistryError(await fetch(`${running.base}/v2/registry.example.com/shoal/app1/manifests/1.0`), 'MANIFEST_UNKNOWN')
    await running.api.close()
    running = await startApi({ store: edge.store, blobSource: source })
    expect((await fetch(blobUrl(), { method: 'HEAD' })).status).toBe(404)
    expect(source.calls).toHaveLength(0)
  })

  it('sends from buffers a direct-I/O store lends (its reads land in them) and gives every one back, after a client that left too', async () => {
    const direct = await tempStore({ directIo: true })
    try {
      expect(direct.store.directIo.on).toBe(true)
      await direct.store.addBundle(encoded, { expectedId: bundleId })
      await direct.store.setRef({ ref: REF, bundleId, manifestDigest: await topDigest(images.images.layouts.app1 ?? ''), at: Date.now() })
      const copying = new CopyingSource(origin.store, direct.store)
      running = await startApi({ store: direct.store, blobSource: copying })
      // Counted as lent, not looked at once: both responses can be done by the time the test looks.
      let lent = 0
      const lendReadBuffer = direct.store.lendReadBuffer.bind(direct.store)
      direct.store.lendReadBuffer = () => {
        const buffer = lendReadBuffer()
        if (buffer !== undefined) lent++
        return buffer
      }
      copying.gate.allow(Infinity)
      const leaving = new AbortController()
      const [whole, left] = await Promise.all([fetch(blobUrl()), fetch(blobUrl(), { signal: leaving.signal })])
      const wholeBody = collect(whole)
      const leftBody = collect(left)
      await leftBody.waitFor(MIB)
      // Lent while the responses send (on the code before, nothing was: every read was copied).
      expect(lent).toBeGreaterThan(0)
      leaving.abort()
      await leftBody.done.catch(() => {})
      // Buffers under the abandoned response's writes come back as those writes end.
      expect((await wholeBody.done).equals(layer.bytes)).toBe(true)
      await until(() => direct.store.readBuffersLent === 0, 'every lent buffer back')
      // Given back buffers are the store's again: a second response reads into them, byte-exact.
      expect(Buffer.from(await (await fetch(blobUrl())).arrayBuffer()).equals(layer.bytes)).toBe(true)
      await until(() => direct.store.readBuffersLent === 0, 'every lent buffer back after the second response')
    } finally {
      await running?.api.close()
      running = undefined
      await direct.close()
    }
  })

  it('cuts the connection when the source fails after the body started', async () => {
    running = await startApi({ store: edge.store, blobSource: source })
    source.failAfter = 1
    source.gate.allow(Infinity)
    const response = await fetch(blobUrl())
    expect(response.status).toBe(200)
    await expect(response.arrayBuffer()).rejects.toThrow()
  })

  it('stops the fetch when the client goes away', async () => {
    running = await startApi({ store: edge.store, blobSource: source })
    const client = new AbortController()
    // The response may start from chunk 0's verified bytes, before the chunk is written: the client leaves once it is.
    const firstStored = chunkStored(edge.store, layer.object, 0)
    source.gate.allow()
    const response = await fetch(blobUrl(), { signal: client.signal })
    expect(response.status).toBe(200)
    const signal = source.calls[0]?.signal
    expect(signal?.aborted).toBe(false)
    await firstStored
    client.abort()
    await new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) resolve()
      const timer = setTimeout(() => { reject(new Error('the fetch was not aborted within 5 s')) }, 5000)
      signal?.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
    })
    // The partial object stays: what arrived is verified and useful to the next request.
    expect((await edge.store.objectState(layer.object)).state).toBe('partial')
    expect(await readFile(edge.store.layout.partialPath(layer.object)).then(b => b.length)).toBeGreaterThan(0)
  })
})
