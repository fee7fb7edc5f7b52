import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { FleetBlobResponder } from '../../src/swarm/index.js'
import type { FleetBlobBytes } from '../../src/swarm/fleet-blob-protocol.js'
import { within } from '../helpers/within.js'
import { connect, patternBytes, useSwarms } from './swarm-fixture.js'

const MiB = 1024 * 1024
const query = { registry: 'registry.example.com', repository: 'team/app', digest: `sha256:${'cd'.repeat(32)}` }
const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

/** A blob whose bytes have not come yet (its node still waits on its registry): its reader waits until its stream's signal aborts. */
function awaited (size: number, closed: () => void): FleetBlobBytes {
  return {
    size,
    read: async function * ({ signal }) {
      await new Promise<never>((_resolve, reject) => {
        const abort = (): void => { reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }
        if (signal.aborted) abort()
        signal.addEventListener('abort', abort, { once: true })
      })
      yield []
    },
    close: async () => { closed() },
  }
}

/** The whole blob, 1 MiB a step. */
function whole (blob: Buffer): FleetBlobBytes {
  return {
    size: blob.byteLength,
    read: async function * () { for (let at = 0; at < blob.byteLength; at += MiB) yield [Buffer.from(blob.subarray(at, at + MiB))] },
    close: async () => {},
  }
}

/** /shoal/fleet-blob/1.0.0 over a data lane, between real swarms over TCP and TLS: the asker lets its stream go before the blob's end. */
describe('a blob stream its asker leaves', () => {
  const { node } = useSwarms()

  it('over a lane, lets go of the blob\'s reader at once, not after the stall timeout, and serves the same edge\'s next ask whole', async () => {
    // An edge with no room for the layer lets the stream go at its HEADER (daemon/fleet-blobs.ts):
    // on a lane that is the socket's FIN, which the holder took for the end of the asker's
    // requests. The answer went on waiting for bytes for that asker, its reader open and its
    // frame reserved in the peer's reader budget, until FLEET_BLOB_STALL_MS (90 s); the edge's
    // next ask of the same blob (room made) waited behind that budget (disk-full-pull-through).
    const blob = patternBytes(3 * MiB + 321, 11)
    let firstClosed: () => void = () => {}
    const readerClosed = new Promise<void>((resolve) => { firstClosed = resolve })
    let asked = 0
    const responder: FleetBlobResponder = async () => ({ status: 'stream', bytes: asked++ === 0 ? awaited(blob.byteLength, firstClosed) : whole(blob) })
    const gateway = await node()
    gateway.swarm.serveFleetBlobs(responder)
    const edge = await node({ trust: [gateway.swarm.peerId] })
    await connect(edge, gateway)

    const first = await edge.swarm.streamFleetBlob(query, { signal: AbortSignal.timeout(30_000) })
    if (first.stream === undefined) throw new Error(`no stream: ${JSON.stringify(first.misses)}`)
    expect(first.stream.size).toBe(blob.byteLength)
    expect(edge.swarm.stats().lanes.opened).toBe(1)
    first.stream.close()
    await within(readerClosed, 20_000, 'the gateway did not let go of the reader of a stream its asker left')

    const second = await edge.swarm.streamFleetBlob(query, { signal: AbortSignal.timeout(30_000) })
    if (second.stream === undefined) throw new Error(`no stream: ${JSON.stringify(second.misses)}`)
    const parts: Buffer[] = []
    for await (const data of second.stream.data) for (const piece of data) parts.push(Buffer.from(piece))
    expect(sha(Buffer.concat(parts))).toBe(sha(blob))
  })
})
