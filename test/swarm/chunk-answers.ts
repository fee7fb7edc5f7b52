import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree, type Store } from '../../src/store/index.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { CHUNK_PROTOCOL, HAVE_PROTOCOL } from '../../src/swarm/index.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { HaveMessage } from '../../src/swarm/pb/swarm-have.pb.js'
import { patternBytes, writeTree } from './swarm-fixture.js'
import type { Connection, Stream } from '@libp2p/interface'

/**
 * The chunk protocol spoken by hand from a bare libp2p peer, for tests that choose what is
 * queued where at a real chunk server (gateway-second-copies, edge-rarest-first, edge-sole-copies).
 */

const MiB = 1024 * 1024

/** A one-file bundle of `chunks` MiB of pattern `seed`, written into `tree` and pushed into `store`: its id and its file's object. */
export async function pushedLayer (store: Store, tree: string, chunks: number, seed: number): Promise<{ bundleId: string, object: string }> {
  await writeTree(tree, { 'layer.bin': patternBytes(chunks * MiB, seed) })
  const { bundleId, bundle } = await pushTree(store, tree)
  return { bundleId, object: bundle.entries.find(e => e.type === 'F')?.checksum ?? '' }
}

export const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()

export const chunkRequest = (object: string, index: number, cancel = false): Uint8Array =>
  frame(ChunkRequest.encode({ object: Buffer.from(object, 'hex'), index, cancel }))

/** The chunk answers on a stream in arrival order, and a wait for the one for `index`. */
export function answers (stream: Stream): { order: Array<{ index: number, status: ChunkResponse.Status }>, next: (index: number) => Promise<ChunkResponse.Status> } {
  const order: Array<{ index: number, status: ChunkResponse.Status }> = []
  const waiting = new Map<number, (status: ChunkResponse.Status) => void>()
  readFrames(stream, {
    maxFrameBytes: 2 * MiB,
    messageTimeoutMs: 120_000,
    onFrame: (bytes) => {
      const response = ChunkResponse.decode(bytes)
      order.push({ index: response.index, status: response.status })
      waiting.get(response.index)?.(response.status)
      waiting.delete(response.index)
    },
  })
  const next = async (index: number): Promise<ChunkResponse.Status> => await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no answer for chunk ${index} within 20 s`)) }, 20_000)
    waiting.set(index, (status) => { clearTimeout(timer); resolve(status) })
  })
  return { order, next }
}

/** Resolves once the holder answers on this have stream with its object states. */
export async function heardStates (stream: Stream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('no object states within 20 s')) }, 20_000)
    readFrames(stream, {
      maxFrameBytes: 4 * MiB,
      messageTimeoutMs: 120_000,
      onFrame: (bytes) => {
        if (HaveMessage.decode(bytes).objects.length === 0) return
        clearTimeout(timer)
        resolve()
      },
    })
  })
}

/**
 * Greets on the have protocol as an edge interested in the bundle does, advertising `bitmap`
 * of `object` when given (one write, so the holder reads both before it answers the hello), and
 * waits for the holder's object states.
 */
export async function greet (connection: Connection, bundleId: string, advertise?: { object: string, bitmap: Uint8Array<ArrayBuffer> }): Promise<void> {
  const have = await connection.newStream(HAVE_PROTOCOL)
  const heard = heardStates(have)
  const hello = frame(HaveMessage.encode({ hello: { gateway: false, bundles: [Buffer.from(bundleId, 'hex')] } }))
  have.send(advertise === undefined
    ? hello
    : new Uint8ArrayList(hello, frame(HaveMessage.encode({ objects: [{ object: Buffer.from(advertise.object, 'hex'), whole: false, bitmap: advertise.bitmap }] }))).subarray())
  await heard
}

/** A neighbour that greeted and opened a chunk stream: what it sends, and the answers it reads. */
export async function chunkAsker (connection: Connection, bundleId: string): Promise<{ stream: Stream } & ReturnType<typeof answers>> {
  await greet(connection, bundleId)
  const stream = await connection.newStream(CHUNK_PROTOCOL)
  return { stream, ...answers(stream) }
}

type ChunkAsker = Awaited<ReturnType<typeof chunkAsker>>

/**
 * Takes chunk `first`, then stops reading and asks for `queued` in one write: one of those goes
 * on its way (the pace's mark, upload-pace.ts), the rest stay queued at the holder.
 */
export async function takeThenQueue (asker: ChunkAsker, object: string, first: number, queued: number[]): Promise<void> {
  const answered = asker.next(first)
  asker.stream.send(chunkRequest(object, first))
  if (await answered !== ChunkResponse.Status.OK) throw new Error(`chunk ${first} was not sent`)
  asker.stream.pause()
  asker.stream.send(new Uint8ArrayList(...queued.map(index => chunkRequest(object, index))).subarray())
}

/** A chunk index no object has: asked of an object nobody holds, it is answered NOT_PRESENT at once. */
export const PROBE_INDEX = 0xffff

/**
 * Asks for `index`, then for a chunk of an object nobody holds, and waits for that NOT_PRESENT:
 * one stream answers in the order it sends, so if `index` was not answered first the holder is
 * holding it back. Returns the wait for `index`'s answer.
 */
export async function askBehindProbe (asker: ChunkAsker, object: string, index: number): Promise<{ answer: Promise<ChunkResponse.Status> }> {
  const answer = asker.next(index)
  const probe = asker.next(PROBE_INDEX)
  asker.stream.send(chunkRequest(object, index))
  asker.stream.send(chunkRequest('cd'.repeat(32), PROBE_INDEX))
  if (await probe !== ChunkResponse.Status.NOT_PRESENT) throw new Error('the probe was answered, not NOT_PRESENT')
  return { answer }
}
