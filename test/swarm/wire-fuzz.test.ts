import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { exportTree, openStore, pushTree, type Store } from '../../src/store/index.js'
import { BUNDLE_PROTOCOL, CHUNK_PROTOCOL, HAVE_PROTOCOL, createPeerKey, createSwarm, type Swarm } from '../../src/swarm/index.js'
import { MAX_CHUNK_REQUEST_BYTES, MAX_HAVE_MESSAGE_BYTES, MAX_BUNDLE_REQUEST_BYTES } from '../../src/swarm/constants.js'
import { encodeVarint } from '../../src/swarm/framing.js'
import { BundlePart, BundleRequest, BundleResponse } from '../../src/swarm/pb/swarm-bundle.pb.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { HaveMessage } from '../../src/swarm/pb/swarm-have.pb.js'
import { Attacker, exchange } from './attacker.js'
import { connect, patternBytes, useSwarms, writeTree } from './swarm-fixture.js'
import type { Connection } from '@libp2p/interface'

/**
 * Every decoder and handler meets bytes a peer chooses: random, oversized, truncated,
 * well-formed but wrong. Whatever arrives, the stream ends (reset when the message breaks a
 * rule), the daemon keeps serving, and nothing is left open behind.
 */

const MiB = 1024 * 1024
const unhex = (id: string): Uint8Array<ArrayBuffer> => Uint8Array.from(Buffer.from(id, 'hex'))
const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()
const frames = (...payloads: Uint8Array[]): Uint8Array => new Uint8ArrayList(...payloads.map(frame)).subarray()

interface Case { name: string, bytes: Uint8Array, reset?: boolean }

const junk = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((bytes): Case => ({ name: 'raw bytes', bytes })),
  fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 4 }).map((payloads): Case => ({ name: 'framed bytes', bytes: frames(...payloads) })),
  fc.uint8Array({ minLength: 1, maxLength: 100 }).chain(payload => fc.nat({ max: payload.byteLength }).map((cut): Case => ({
    name: 'truncated frame', bytes: frame(payload).subarray(0, cut + 1), reset: cut + 1 < frame(payload).byteLength ? true : undefined,
  }))),
)

const oversized = (limit: number): fc.Arbitrary<Case> =>
  fc.integer({ min: limit + 1, max: 2 ** 28 - 1 }).map(n => ({ name: `length prefix ${n}`, bytes: encodeVarint(n), reset: true }))

describe('wire fuzzing', () => {
  let dir: string
  let store: Store
  let target: Swarm
  let attacker: Attacker
  let connection: Connection
  let bundleId: string
  /** An object of 3 chunks and one of 70 (more than a stream may queue). */
  let small: string
  let large: string
  const { node, tempDir } = useSwarms()

  beforeAll(async () => {
    const { mkdtemp } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    dir = await mkdtemp(join(tmpdir(), 'shoal-fuzz-'))
    await writeTree(join(dir, 'tree'), { 'small.bin': patternBytes(2 * MiB + 100, 31), 'large.bin': patternBytes(70 * MiB, 32) })
    store = await openStore({ dir: join(dir, 'store'), fsync: false })
    const pushed = await pushTree(store, join(dir, 'tree'))
    bundleId = pushed.bundleId
    const sizes = new Map(pushed.bundle.entries.filter(e => e.type === 'F').map(e => [e.path, e.checksum]))
    small = sizes.get('./small.bin') ?? ''
    large = sizes.get('./large.bin') ?? ''
    // The fuzzer re-keys after every ban from one address; the limit on new identities per IP
    // (tested in hostile.test.ts) would stop the fuzzing, not test the handlers.
    target = createSwarm({ store }, { privateKey: await createPeerKey(), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, maxNewIdentitiesPerIp: 100_000 })
    await target.start()
    attacker = await Attacker.start()
    connection = await attacker.connect(target.addresses()[0] ?? '')
  })

  afterAll(async () => {
    await attacker?.stop()
    await target?.stop()
    await store?.close()
    const { rm } = await import('node:fs/promises')
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  /**
   * Broken messages cost the attacker score, and a few get it banned (peer-score.ts): then it
   * comes back under a new identity, as a real attacker would, and the fuzzing goes on.
   */
  async function check (protocol: string, c: Case): Promise<void> {
    if (connection.status !== 'open' || target.banned().some(b => b.peer === attacker.peerId)) {
      await attacker.stop()
      attacker = await Attacker.start()
      connection = await attacker.connect(target.addresses()[0] ?? '')
    }
    const outcome = await exchange(connection, protocol, c.bytes)
    if (c.reset === true) expect(outcome.reset, c.name).toBe(true)
    if (c.reset === false) expect(outcome.reset, c.name).toBe(false)
  }

  /** Nothing of the attacker's stays open at the target, and the target still answers a newcomer. */
  async function stillHealthy (): Promise<void> {
    if (connection.status === 'open') expect(connection.streams.filter(s => s.protocol.startsWith('/shoal/')).length).toBe(0)
    await attacker.stop()
    attacker = await Attacker.start()
    connection = await attacker.connect(target.addresses()[0] ?? '')
    const answer = await exchange(connection, BUNDLE_PROTOCOL, frame(BundleRequest.encode({ bundleId: unhex(bundleId) })))
    expect(answer).toMatchObject({ reset: false })
    expect(answer.received).toBeGreaterThan(100)
  }

  it('the have handler survives junk and resets on broken rules', async () => {
    const hello = HaveMessage.encode({ hello: { gateway: false, bundles: [unhex(bundleId)] } })
    const semantic = fc.constantFrom<Case>(
      { name: 'first message not a hello', bytes: frames(HaveMessage.encode({ interest: { added: [], removed: [unhex(bundleId)] } })), reset: true },
      { name: 'two hellos', bytes: frames(hello, hello), reset: true },
      { name: 'hello and interest at once', bytes: frames(HaveMessage.encode({ hello: { gateway: false, bundles: [] }, interest: { added: [unhex(bundleId)], removed: [] } })), reset: true },
      { name: '31-byte bundle ID', bytes: frames(HaveMessage.encode({ hello: { gateway: false, bundles: [new Uint8Array(31)] } })), reset: true },
      { name: 'bitmap of the wrong length', bytes: frames(hello, HaveMessage.encode({ objects: [{ object: unhex(small), whole: false, bitmap: new Uint8Array(2) }] })), reset: true },
      { name: 'bitmap with bits past the end', bytes: frames(hello, HaveMessage.encode({ objects: [{ object: unhex(small), whole: false, bitmap: Uint8Array.of(0xff) }] })), reset: true },
      { name: 'whole and a bitmap', bytes: frames(hello, HaveMessage.encode({ objects: [{ object: unhex(small), whole: true, bitmap: Uint8Array.of(0x80) }] })), reset: true },
      { name: 'chunk index out of range', bytes: frames(hello, HaveMessage.encode({ updates: [{ object: unhex(small), indexes: [3] }] })), reset: true },
      { name: 'empty message', bytes: frames(hello, new Uint8Array(0)), reset: true },
      { name: 'a well-behaved neighbour', bytes: frames(hello, HaveMessage.encode({ objects: [{ object: unhex(small), whole: false, bitmap: Uint8Array.of(0xa0) }] }), HaveMessage.encode({ updates: [{ object: unhex('ab'.repeat(32)), indexes: [1, 999] }] })), reset: false },
    )
    const bans = target.stats().bans
    await fc.assert(fc.asyncProperty(fc.oneof(junk, oversized(MAX_HAVE_MESSAGE_BYTES), semantic), async (c) => { await check(HAVE_PROTOCOL, c) }), { numRuns: 60 })
    // Breaking the rules costs: the attacker's identities were banned along the way.
    expect(target.stats().bans).toBeGreaterThan(bans)
    await stillHealthy()
  })

  it('the chunk handler survives junk and resets on broken rules', async () => {
    const request = (object: string | Uint8Array<ArrayBuffer>, index: number, cancel = false): Uint8Array =>
      ChunkRequest.encode({ object: typeof object === 'string' ? unhex(object) : object, index, cancel })
    const semantic = fc.constantFrom<Case>(
      { name: '31-byte object', bytes: frames(request(new Uint8Array(31), 0)), reset: true },
      { name: 'chunk index out of range', bytes: frames(request(small, 3)), reset: true },
      { name: 'the same chunk twice', bytes: frames(request(large, 5), request(large, 5)), reset: true },
      { name: 'more requests than a stream may queue', bytes: frames(...[...Array(70).keys()].map(i => request(large, i))), reset: true },
      { name: 'an unknown object', bytes: frames(request('cd'.repeat(32), 0)), reset: false },
      { name: 'a cancel for nothing', bytes: frames(request(small, 1, true)), reset: false },
      { name: 'a real request', bytes: frames(request(small, 2)), reset: false },
    )
    const bans = target.stats().bans
    await fc.assert(fc.asyncProperty(fc.oneof(junk, oversized(MAX_CHUNK_REQUEST_BYTES), semantic), async (c) => { await check(CHUNK_PROTOCOL, c) }), { numRuns: 60 })
    // Breaking the rules costs: the attacker's identities were banned along the way.
    expect(target.stats().bans).toBeGreaterThan(bans)
    await stillHealthy()
  })

  it('the bundle handler survives junk and resets on broken rules', async () => {
    const semantic = fc.constantFrom<Case>(
      { name: 'a 33-byte ID', bytes: frames(BundleRequest.encode({ bundleId: new Uint8Array(33) })), reset: true },
      { name: 'two requests', bytes: frames(BundleRequest.encode({ bundleId: unhex(bundleId) }), BundleRequest.encode({ bundleId: unhex(bundleId) })), reset: true },
      { name: 'an unknown bundle', bytes: frames(BundleRequest.encode({ bundleId: unhex('ef'.repeat(32)) })), reset: false },
      { name: 'a known bundle', bytes: frames(BundleRequest.encode({ bundleId: unhex(bundleId) })), reset: false },
    )
    const bans = target.stats().bans
    await fc.assert(fc.asyncProperty(fc.oneof(junk, oversized(MAX_BUNDLE_REQUEST_BYTES), semantic), async (c) => { await check(BUNDLE_PROTOCOL, c) }), { numRuns: 60 })
    // Breaking the rules costs: the attacker's identities were banned along the way.
    expect(target.stats().bans).toBeGreaterThan(bans)
    await stillHealthy()
  })

  it('a puller asking a junk-speaking peer for a manifest stores no bundle and gives up cleanly', async () => {
    const wanted = 'a1'.repeat(32)
    const answer = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 3 }).map(p => frames(...p)),
      fc.bigInt({ min: 1n, max: 2n ** 40n }).map(total => frames(BundleResponse.encode({ status: BundleResponse.Status.OK, totalBytes: total }))),
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map(data => frames(
        BundleResponse.encode({ status: BundleResponse.Status.OK, totalBytes: BigInt(data.byteLength) }), BundlePart.encode({ data }))),
      fc.uint8Array({ minLength: 2, maxLength: 64 }).map(data => frames(
        BundleResponse.encode({ status: BundleResponse.Status.OK, totalBytes: 1n }), BundlePart.encode({ data }))),
      fc.constant(frames(BundleResponse.encode({ status: BundleResponse.Status.STATUS_UNSPECIFIED }))),
    )
    const liar = await Attacker.start()
    let reply: Uint8Array = new Uint8Array(0)
    await liar.handle(BUNDLE_PROTOCOL, (stream) => {
      stream.addEventListener('message', () => {
        try {
          stream.send(reply)
          void stream.close().catch(() => {})
        } catch {}
      }, { once: true })
    })
    try {
      await fc.assert(fc.asyncProperty(answer, async (bytes) => {
        reply = bytes
        const puller = await node({ manifestSearchTimeoutMs: 200 })
        await liar.connect(puller.address)
        await expect(puller.swarm.pull(wanted)).rejects.toMatchObject({ code: 'SWARM_BUNDLE_NOT_FOUND' })
        expect(await puller.store.listBundles()).toEqual([])
      }), { numRuns: 10 })
    } finally {
      await liar.stop()
    }
  })

  it('a puller asking a junk-speaking peer stores nothing bad and finishes from an honest one', async () => {
    const honest = await node({ gateway: true })
    const files = { 'f.bin': patternBytes(3 * MiB, 33) }
    const tree = await tempDir()
    await writeTree(tree, files)
    const { bundleId: id, bundle } = await pushTree(honest.store, tree)
    const object = bundle.entries.find(e => e.type === 'F')?.checksum ?? ''
    const encoded = await honest.store.getEncodedBundle(id) as Uint8Array

    const answer = fc.oneof(
      fc.uint8Array({ maxLength: 256 }).map(bytes => ({ name: 'raw', make: (_o: Uint8Array, _i: number) => bytes })),
      fc.uint8Array({ maxLength: 4096 }).map(data => ({ name: 'wrong bytes', make: (o: Uint8Array<ArrayBuffer>, i: number) => frame(ChunkResponse.encode({ object: o, index: i, status: ChunkResponse.Status.OK, data })) })),
      fc.constant({ name: 'unasked chunk', make: (o: Uint8Array<ArrayBuffer>, i: number) => frame(ChunkResponse.encode({ object: o, index: i + 7, status: ChunkResponse.Status.OK, data: new Uint8Array(8) })) }),
      fc.constant({ name: 'not present with bytes', make: (o: Uint8Array<ArrayBuffer>, i: number) => frame(ChunkResponse.encode({ object: o, index: i, status: ChunkResponse.Status.NOT_PRESENT, data: new Uint8Array(8) })) }),
      fc.constant({ name: 'unknown status', make: (o: Uint8Array<ArrayBuffer>, i: number) => frame(ChunkResponse.encode({ object: o, index: i, status: ChunkResponse.Status.STATUS_UNSPECIFIED })) }),
      fc.integer({ min: MAX_CHUNK_REQUEST_BYTES + 2 * MiB, max: 2 ** 27 }).map(n => ({ name: 'oversized', make: () => encodeVarint(n) })),
    )
    await fc.assert(fc.asyncProperty(answer, async (a) => {
      const liar = await Attacker.start()
      try {
        // The liar answers the first chunk request on each stream with the generated bytes.
        await liar.handle(CHUNK_PROTOCOL, (stream) => {
          stream.addEventListener('message', (evt) => {
            const bytes = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
            // Requests are under 128 bytes: a one-byte length prefix.
            const request = ChunkRequest.decode(bytes.subarray(1, 1 + (bytes[0] ?? 0)))
            try { stream.send(a.make(request.object, request.index)) } catch {}
          }, { once: true })
        })
        // A short stall timeout: a liar that answers half a message is given up on quickly.
        const puller = await node({ scheduler: { stallTimeoutMs: 1_000 } })
        await puller.store.addBundle(encoded, { expectedId: id })
        await connect(puller, honest)
        // The liar greets the puller as an edge holding the whole object: it is asked first.
        const liarConnection = await liar.connect(puller.address)
        const have = await liarConnection.newStream(HAVE_PROTOCOL)
        have.addEventListener('message', () => {})
        have.send(frames(
          HaveMessage.encode({ hello: { gateway: false, bundles: [unhex(id)] } }),
          HaveMessage.encode({ objects: [{ object: unhex(object), whole: true, bitmap: new Uint8Array(0) }] }),
        ))
        await puller.swarm.pull(id, { signal: AbortSignal.timeout(30_000) })
        const out = join(await tempDir(), 'out')
        await exportTree(puller.store, id, out)
        expect((await readFile(join(out, 'f.bin'))).equals(files['f.bin'])).toBe(true)
      } finally {
        await liar.stop()
      }
    }), { numRuns: 8 })
  })
})
