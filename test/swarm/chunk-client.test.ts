import { afterEach, describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { CHUNK_PROTOCOL } from '../../src/swarm/index.js'
import { ChunkClient, type ChunkStatus } from '../../src/swarm/chunk-protocol.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { Attacker } from './attacker.js'
import type { Stream } from '@libp2p/interface'

/**
 * The asking side of the chunk protocol against a holder played by hand over a real libp2p
 * connection (TCP, noise, yamux): the holder answers exactly when the test says.
 */

const OBJECT = 'ab'.repeat(32)
const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()

interface Seen { index: number, cancel: boolean }

describe('ChunkClient', () => {
  const nodes: Attacker[] = []
  afterEach(async () => {
    for (const node of nodes.splice(0)) await node.stop()
  })

  /** A holder whose chunk stream the test answers by hand, and a client asking it. */
  async function pair (): Promise<{ client: ChunkClient, seen: Seen[], holderStream: () => Stream, next: (n: number) => Promise<void>, responses: Array<{ index: number, status: ChunkStatus }>, started: Array<{ object: string, index: number }> }> {
    const holder = await Attacker.start()
    const asker = await Attacker.start()
    nodes.push(holder, asker)
    const seen: Seen[] = []
    const waiters: Array<{ count: number, resolve: () => void }> = []
    let stream: Stream | undefined
    await holder.handle(CHUNK_PROTOCOL, (s) => {
      stream = s
      readFrames(s, {
        maxFrameBytes: 64,
        messageTimeoutMs: 30_000,
        onFrame: (bytes) => {
          const request = ChunkRequest.decode(bytes)
          seen.push({ index: request.index, cancel: request.cancel })
          for (const waiter of waiters.splice(0)) {
            if (seen.length >= waiter.count) waiter.resolve()
            else waiters.push(waiter)
          }
        },
      })
    })
    const connection = await asker.connect(holder.node.getMultiaddrs()[0]?.toString() ?? '')
    const responses: Array<{ index: number, status: ChunkStatus }> = []
    const started: Array<{ object: string, index: number }> = []
    const client = new ChunkClient({
      openTimeoutMs: 10_000,
      open: async ({ signal }) => await connection.newStream(CHUNK_PROTOCOL, { signal }),
      onResponse: (_object, index, status) => { responses.push({ index, status }) },
      onResponseStarted: (object, index) => { started.push({ object, index }) },
      onClosed: () => {},
    })
    /** Resolves once the holder has seen `count` messages in all (20 s at most). */
    const next = async (count: number): Promise<void> => {
      if (seen.length >= count) return
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error(`the holder saw ${seen.length} of ${count} messages`)) }, 20_000)
        waiters.push({ count, resolve: () => { clearTimeout(timer); resolve() } })
      })
    }
    return { client, seen, holderStream: () => stream as Stream, next, responses, started }
  }

  it('asks again for a chunk that was cancelled and asked for again before the CANCELLED answer came', async () => {
    const { client, seen, holderStream, next, responses } = await pair()
    client.request(OBJECT, 3)
    client.cancel(OBJECT, 3)
    // The scheduler wants it again (another holder lost it) before the holder answered the cancel.
    client.request(OBJECT, 3)
    await next(2)
    expect(seen).toEqual([{ index: 3, cancel: false }, { index: 3, cancel: true }])
    // The cancel took: the holder answers CANCELLED. Before the fix, the client reported the
    // chunk cancelled and never asked this holder for it again while the scheduler counted it
    // in flight here.
    holderStream().send(frame(ChunkResponse.encode({ object: Buffer.from(OBJECT, 'hex'), index: 3, status: ChunkResponse.Status.CANCELLED })))
    await next(3)
    expect(seen[2]).toEqual({ index: 3, cancel: false })
    expect(responses).toEqual([])
    holderStream().send(frame(ChunkResponse.encode({ object: Buffer.from(OBJECT, 'hex'), index: 3, status: ChunkResponse.Status.OK, data: Uint8Array.of(1, 2, 3) })))
    await waitFor(() => responses.length > 0)
    expect(responses).toEqual([{ index: 3, status: 'ok' }])
  })

  it('takes the bytes of a cancelled chunk asked for again as its answer, without asking twice', async () => {
    const { client, seen, holderStream, next, responses } = await pair()
    client.request(OBJECT, 5)
    client.cancel(OBJECT, 5)
    client.request(OBJECT, 5)
    await next(2)
    // The bytes were already on the wire when the cancel came: they answer both asks.
    holderStream().send(frame(ChunkResponse.encode({ object: Buffer.from(OBJECT, 'hex'), index: 5, status: ChunkResponse.Status.OK, data: Uint8Array.of(9) })))
    await waitFor(() => responses.length > 0)
    expect(responses).toEqual([{ index: 5, status: 'ok' }])
    // A later request for another chunk shows nothing more was sent for this one.
    client.request(OBJECT, 6)
    await next(3)
    expect(seen).toEqual([{ index: 5, cancel: false }, { index: 5, cancel: true }, { index: 6, cancel: false }])
  })

  it('says which chunk is arriving from its first bytes, before the rest of it has come, and only for a request standing', async () => {
    const { client, next, holderStream, responses, started } = await pair()
    client.request(OBJECT, 0)
    client.request(OBJECT, 4)
    client.request(OBJECT, 9)
    client.cancel(OBJECT, 9)
    await next(4)
    const data = new Uint8Array(1024 * 1024).fill(7)
    for (const index of [4, 0, 9]) {
      // Index 0 is left out of the encoding (proto3's default): the head says chunk 0 all the same.
      const whole = frame(ChunkResponse.encode({ object: Buffer.from(OBJECT, 'hex'), index, status: ChunkResponse.Status.OK, data }))
      holderStream().send(whole.subarray(0, 100_000))
      if (index !== 9) {
        await waitFor(() => started.length > 0)
        expect(started.splice(0)).toEqual([{ object: OBJECT, index }])
        expect(responses).toEqual([])
      }
      holderStream().send(whole.subarray(100_000))
      await waitFor(() => responses.length > 0)
      expect(responses.splice(0)).toEqual([{ index, status: 'ok' }])
    }
    // The cancelled chunk's bytes came, but nobody waited on them: no start was reported for it.
    expect(started).toEqual([])
  })

  it('a chunk cancelled, asked again and cancelled again is answered CANCELLED and not asked a third time', async () => {
    const { client, seen, holderStream, next, responses } = await pair()
    client.request(OBJECT, 7)
    client.cancel(OBJECT, 7)
    client.request(OBJECT, 7)
    client.cancel(OBJECT, 7)
    await next(2)
    holderStream().send(frame(ChunkResponse.encode({ object: Buffer.from(OBJECT, 'hex'), index: 7, status: ChunkResponse.Status.CANCELLED })))
    await waitFor(() => responses.length > 0)
    expect(responses).toEqual([{ index: 7, status: 'cancelled' }])
    client.request(OBJECT, 8)
    await next(3)
    expect(seen.map(s => s.index)).toEqual([7, 7, 8])
  })
})

async function waitFor (condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
