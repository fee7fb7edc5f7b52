import { setTimeout as delay } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import type { FleetBlobResponder } from '../../src/swarm/index.js'
import { FLEET_BLOB_WINDOW_BYTES } from '../../src/swarm/fleet-blob-protocol.js'
import { connect, patternBytes, useSwarms } from './swarm-fixture.js'

const MiB = 1024 * 1024
const query = { registry: 'registry.example.com', repository: 'team/app', digest: `sha256:${'ab'.repeat(32)}` }

/** /shoal/fleet-blob/1.0.0 between real swarms over TCP. */
describe('a blob streamed from the pull-through node', () => {
  const { node } = useSwarms()

  it('never runs more than its window ahead of an asker that writes slowly, and delivers every byte', async () => {
    const size = 3 * FLEET_BLOB_WINDOW_BYTES
    const piece = patternBytes(MiB, 7)
    let produced = 0
    const responder: FleetBlobResponder = async () => ({
      status: 'stream',
      bytes: {
        size,
        read: async function * () {
          while (produced < size) {
            produced += piece.byteLength
            yield piece
          }
        },
        close: async () => {},
      },
    })
    const gateway = await node()
    gateway.swarm.serveFleetBlobs(responder)
    const edge = await node({ trust: [gateway.swarm.peerId] })
    await connect(edge, gateway)

    const { stream, misses } = await edge.swarm.streamFleetBlob(query, { signal: AbortSignal.timeout(60_000) })
    expect(misses).toEqual([])
    if (stream === undefined) throw new Error('no stream')
    let received = 0
    let lead = 0
    for await (const data of stream.data) {
      received += data.byteLength
      lead = Math.max(lead, produced - received)
      // An edge's slow disk: each MiB takes a while to write (simulated, not a wait for an event).
      await delay(15)
    }
    expect(received).toBe(size)
    // Without flow control the gateway ran the whole blob ahead (and past 64 MiB failed the stream).
    expect(lead).toBeLessThanOrEqual(FLEET_BLOB_WINDOW_BYTES + 4 * MiB)
  })
})
