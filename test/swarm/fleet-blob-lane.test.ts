import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { GrowingFile } from '../../src/store/index.js'
import type { FleetBlobResponder } from '../../src/swarm/index.js'
import { connect, patternBytes, useSwarms, type TestNode } from './swarm-fixture.js'

const MiB = 1024 * 1024
const PIECE_BYTES = 64 * 1024

const queryOf = (n: number): { registry: string, repository: string, digest: string } => ({ registry: 'registry.example.com', repository: 'team/app', digest: `sha256:${n.toString(16).padStart(2, '0').repeat(32)}` })

/** A pull-through node's answer: `size` bytes of `blob`, 1 MiB steps as fresh 64 KiB pieces (as GrowingFile reads them). */
function answering (blob: Buffer): FleetBlobResponder {
  return async () => ({
    status: 'stream',
    bytes: {
      size: blob.byteLength,
      read: async function * () {
        for (let at = 0; at < blob.byteLength; at += MiB) {
          const pieces: Buffer[] = []
          for (let p = at; p < Math.min(blob.byteLength, at + MiB); p += PIECE_BYTES) pieces.push(Buffer.from(blob.subarray(p, Math.min(blob.byteLength, p + PIECE_BYTES, at + MiB))))
          yield pieces
        }
      },
      close: async () => {},
    },
  })
}

async function received (edge: TestNode, n: number): Promise<Buffer> {
  const { stream, misses } = await edge.swarm.streamFleetBlob(queryOf(n), { signal: AbortSignal.timeout(60_000) })
  if (stream === undefined) throw new Error(`no stream: ${JSON.stringify(misses)}`)
  const parts: Buffer[] = []
  for await (const data of stream.data) for (const piece of data) parts.push(Buffer.from(piece))
  return Buffer.concat(parts)
}

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

/** /shoal/fleet-blob/1.0.0 over a data lane asked for it (/shoal/blob-lane/1.0.0), between real swarms over TCP and TLS. */
describe('a blob stream over a data lane', () => {
  const { node, tempDir } = useSwarms()

  it('carries the blob over a lane of its own when the pull-through node has a lane listener, every byte in order', async () => {
    const blob = patternBytes(5 * MiB + 12_345, 3)
    const gateway = await node()
    gateway.swarm.serveFleetBlobs(answering(blob))
    const edge = await node({ trust: [gateway.swarm.peerId] })
    await connect(edge, gateway)

    const got = await received(edge, 1)
    expect(sha(got)).toBe(sha(blob))
    const edgeLanes = edge.swarm.stats().lanes
    expect(edgeLanes.opened).toBe(1)
    // Every byte of the blob crossed the lane, not libp2p.
    expect(edgeLanes.bytesReceived).toBeGreaterThanOrEqual(blob.byteLength)
    expect(gateway.swarm.stats().lanes.served).toBe(1)
  })

  it('streams over libp2p when the pull-through node serves no lanes (an older node, or its lane port off), and asks it no more while connected', async () => {
    const blob = patternBytes(3 * MiB + 7, 4)
    const gateway = await node({ lanePort: false })
    gateway.swarm.serveFleetBlobs(answering(blob))
    const edge = await node({ trust: [gateway.swarm.peerId] })
    await connect(edge, gateway)

    expect(sha(await received(edge, 1))).toBe(sha(blob))
    expect(sha(await received(edge, 2))).toBe(sha(blob))
    const lanes = edge.swarm.stats().lanes
    expect(lanes.opened).toBe(0)
    // One failed ask (the protocol is not spoken there), not one per blob.
    expect(lanes.failed).toBe(1)
    expect(lanes.bytesReceived).toBe(0)
  })

  it('takes a third blob stream at once over libp2p without asking a lane the holder would refuse (two per peer), every byte', async () => {
    const blob = patternBytes(2 * MiB + 99, 5)
    const gateway = await node()
    // Every answer waits until three streams asked: three lanes are wanted at once.
    let asked = 0
    let allAsked: () => void = () => {}
    const three = new Promise<void>((resolve) => { allAsked = resolve })
    const answer = answering(blob)
    gateway.swarm.serveFleetBlobs(async (query, from, signal) => {
      if (++asked === 3) allAsked()
      await three
      return await answer(query, from, signal)
    })
    const edge = await node({ trust: [gateway.swarm.peerId] })
    await connect(edge, gateway)

    const all = await Promise.all([1, 2, 3].map(async n => sha(await received(edge, n))))
    expect(all).toEqual([sha(blob), sha(blob), sha(blob)])
    // Two lanes per peer: the third stream went over libp2p, and was not asked a lane: a refused
    // ask counted as a failure kept the peer's next blob streams off lanes for 5 s (and, before
    // FrameQueue failed a stream reset before it listened, waited for good).
    expect(gateway.swarm.stats().lanes.served).toBe(2)
    expect(edge.swarm.stats().lanes.opened).toBe(2)
    expect(edge.swarm.stats().lanes.failed).toBe(0)
    expect(edge.swarm.stats().lanes.bytesReceived).toBeLessThan(3 * blob.byteLength)
  })

  it('sends two blobs at once from files still growing, each frame read behind its head into reused memory, every byte of each in order', async () => {
    const blobs = [patternBytes(7 * MiB + 4_321, 6), patternBytes(6 * MiB + 17, 7)]
    const dir = await tempDir()
    const files = await Promise.all(blobs.map(async (blob, i) => await GrowingFile.create(join(dir, `blob-${i}`), blob.byteLength)))
    const gateway = await node()
    gateway.swarm.serveFleetBlobs(async (query) => ({ status: 'stream', bytes: files[query.digest === queryOf(1).digest ? 0 : 1]!.reader() }))
    const edge = await node({ trust: [gateway.swarm.peerId] })
    await connect(edge, gateway)
    try {
      const got = Promise.all([received(edge, 1), received(edge, 2)])
      // Appended as a registry's body comes, in pieces of odd sizes, both files in turn: the
      // readers meet each file's growing end, and frames of both streams take buffers in turn.
      const steps = [300_001, 1024 * 1024, 65_537, 2 * 1024 * 1024 + 3]
      const at = [0, 0]
      for (let turn = 0; at.some((done, i) => done < blobs[i]!.byteLength); turn++) {
        for (const [i, blob] of blobs.entries()) {
          const start = at[i]!
          if (start >= blob.byteLength) continue
          const end = Math.min(blob.byteLength, start + steps[turn % steps.length]!)
          await files[i]!.append(blob.subarray(start, end))
          at[i] = end
          if (end === blob.byteLength) files[i]!.complete()
        }
      }
      const [first, second] = await got
      expect(sha(first)).toBe(sha(blobs[0]!))
      expect(sha(second)).toBe(sha(blobs[1]!))
      expect(edge.swarm.stats().lanes.opened).toBe(2)
    } finally {
      for (const file of files) await file.writerFinished()
    }
  })
})
