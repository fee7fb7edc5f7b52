import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree } from '../../src/store/index.js'
import { CHUNK_PROTOCOL } from '../../src/swarm/index.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { Attacker } from './attacker.js'
import { patternBytes, useSwarms, writeTree } from './swarm-fixture.js'

/**
 * A chunk server answers a request the asker cancels while the server waits to pick it (the
 * upload cap, the reader budget, a taker's turn): the queue is empty when it comes back to pick.
 * It used to pick the request at the queue's head anyway, read `.object` of nothing, and abort
 * the stream with a TypeError: 1.5 chunk streams per edge a run on the 16-host bed, each a
 * chunk asked again and, on libp2p, the peer's have stream closed with it.
 */

const MiB = 1024 * 1024
const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()
const request = (object: string, index: number, cancel = false): Uint8Array =>
  frame(ChunkRequest.encode({ object: Buffer.from(object, 'hex'), index, cancel }))

describe('a request cancelled before the holder picks it', () => {
  const { node, tempDir } = useSwarms()

  it('is answered CANCELLED on a stream that goes on serving', async () => {
    const holder = await node()
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(2 * MiB, 77) })
    const { bundle } = await pushTree(holder.store, tree)
    const object = bundle.entries.find(e => e.type === 'F')?.checksum ?? ''
    const asker = await Attacker.start()
    try {
      const connection = await asker.connect(holder.address)
      const stream = await connection.newStream(CHUNK_PROTOCOL)
      const answers: Array<{ index: number, status: ChunkResponse.Status, bytes: number }> = []
      let answered: () => void = () => {}
      readFrames(stream, {
        maxFrameBytes: 2 * MiB,
        messageTimeoutMs: 60_000,
        onFrame: (bytes) => {
          const response = ChunkResponse.decode(bytes)
          answers.push({ index: response.index, status: response.status, bytes: response.data.byteLength })
          answered()
        },
      })
      const closed = new Promise<Error | undefined>((resolve) => { stream.addEventListener('close', (evt) => { resolve(evt.error) }, { once: true }) })
      const next = async (n: number): Promise<void> => {
        while (answers.length < n) {
          const more = new Promise<void>((resolve) => { answered = resolve })
          const error = await Promise.race([more.then(() => undefined), closed.then(err => err ?? new Error('the stream closed'))])
          if (error !== undefined) throw error
        }
      }
      // One write: the request is queued and the cancel lands while the server is between its
      // checks and its pick.
      stream.send(new Uint8ArrayList(request(object, 0), request(object, 0, true)))
      await next(1)
      expect(answers[0]).toEqual({ index: 0, status: ChunkResponse.Status.CANCELLED, bytes: 0 })
      stream.send(request(object, 1))
      await next(2)
      expect(answers[1]).toEqual({ index: 1, status: ChunkResponse.Status.OK, bytes: MiB })
      expect(stream.status).toBe('open')
    } finally {
      await asker.stop()
    }
  }, 60_000)
})
