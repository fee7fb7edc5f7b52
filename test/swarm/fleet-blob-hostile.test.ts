import { describe, expect, it } from 'vitest'
import { STRANGER_UNREAD_BYTES } from '../../src/swarm/constants.js'
import { FLEET_BLOB_PROTOCOL, MAX_FLEET_BLOB_FRAME_BYTES, fetchFleetBlob } from '../../src/swarm/fleet-blob-protocol.js'
import { readFrames, sendFrame } from '../../src/swarm/framing.js'
import type { FleetBlobResponder } from '../../src/swarm/index.js'
import { FleetBlobFrame, FleetBlobRequest } from '../../src/swarm/pb/swarm-fleet-blob.pb.js'
import type { ShoalNode } from '../../src/swarm/libp2p-node.js'
import { Attacker } from './attacker.js'
import { connect, patternBytes, useSwarms, type TestNode } from './swarm-fixture.js'

/**
 * One peer opening many /shoal/fleet-blob/1.0.0 streams against a real gateway (libp2p over
 * TCP), beside an honest edge streaming a blob from it: the chunk server's bounds hold here too
 * — a peer's unread bytes count against its reader budget, and a peer's frames take turns at
 * the node's upload slots (and cap) as one peer, not as sixteen.
 */

const MiB = 1024 * 1024
const STREAMS = 16
const piece = patternBytes(MiB, 31)
/** Any digest asked for: `size(digest)` bytes (the same megabyte over and over; only counts matter here). */
const responder = (sizeOf: (digest: string) => number): FleetBlobResponder => async ({ digest }) => {
  const size = sizeOf(digest)
  return {
    status: 'stream',
    bytes: {
      size,
      read: async function * () { for (let at = 0; at < size; at += MiB) yield [piece] },
      close: async () => {},
    },
  }
}
const digestOf = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`
const query = (i: number): { registry: string, repository: string, digest: string } => ({ registry: 'registry.example.com', repository: 'team/app', digest: digestOf(i) })

describe('a peer with many fleet-blob streams', () => {
  const { node } = useSwarms()

  /** An honest edge of the gateway's. */
  async function honestEdge (gateway: TestNode): Promise<TestNode> {
    const edge = await node({ trust: [gateway.swarm.peerId] })
    await connect(edge, gateway)
    return edge
  }

  /** An honest edge (a new one unless given) streams blob `i` from the gateway to its end; resolves with the bytes it got (`onFirst` is called with its first piece's). */
  async function honestPull (gateway: TestNode, i: number, onFirst: (bytes: number) => void = () => {}, edge?: TestNode): Promise<number> {
    edge ??= await honestEdge(gateway)
    const { stream, misses } = await edge.swarm.streamFleetBlob(query(i), { signal: AbortSignal.timeout(120_000) })
    if (stream === undefined) throw new Error(`no stream: ${JSON.stringify(misses)}`)
    let received = 0
    for await (const data of stream.data) {
      if (received === 0) onFirst(data.byteLength)
      received += data.byteLength
    }
    return received
  }

  const uploadedTo = (gateway: TestNode, peer: string): number => gateway.swarm.stats().perPeer[peer]?.bytesUploaded ?? 0

  it('that reads none of them is sent a stranger\'s budget while an edge streams a blob, and the rest once it reads', async () => {
    const blobBytes = 4 * MiB
    const gateway = await node()
    gateway.swarm.serveFleetBlobs(responder(digest => digest === digestOf(100) ? 24 * MiB : blobBytes))
    const attacker = await Attacker.start()
    try {
      const connection = await attacker.connect(gateway.address)
      const received: number[] = []
      const ended: Array<Promise<void>> = []
      for (let i = 0; i < STREAMS; i++) {
        const stream = await connection.newStream(FLEET_BLOB_PROTOCOL)
        received.push(0)
        ended.push(new Promise<void>((resolve, reject) => {
          readFrames(stream, {
            maxFrameBytes: MAX_FLEET_BLOB_FRAME_BYTES,
            messageTimeoutMs: 120_000,
            onFrame: (bytes) => {
              const frame = FleetBlobFrame.decode(bytes)
              if (frame.kind === FleetBlobFrame.Kind.DATA) received[i] = (received[i] ?? 0) + frame.data.byteLength
              else if (frame.kind === FleetBlobFrame.Kind.END) resolve()
              else if (frame.kind !== FleetBlobFrame.Kind.HEADER) reject(new Error(`stream ${i}: ${frame.kind} ${frame.reason}`))
            },
            onLargeFrame: (bytes) => {
              const frame = FleetBlobFrame.decode(bytes)
              if (frame.kind === FleetBlobFrame.Kind.DATA) received[i] = (received[i] ?? 0) + frame.data.byteLength
            },
          })
        }))
        await sendFrame(stream, FleetBlobRequest.encode({ ...query(i), offset: 0n, direct: false }))
        // It asks and takes nothing: yamux credits the gateway nothing back.
        stream.pause()
        ended[i]?.catch(() => undefined)
      }

      // An honest edge streams 24 MiB from the same gateway meanwhile: before, time enough for
      // the gateway to send each of the sixteen streams its whole blob (64 MiB).
      expect(await honestPull(gateway, 100)).toBe(24 * MiB)
      const sentWhileUnread = uploadedTo(gateway, attacker.peerId)
      console.log(`fleet-blob budget: the gateway sent ${(sentWhileUnread / MiB).toFixed(2)} MiB to a peer with ${STREAMS} streams that read nothing while an edge streamed 24 MiB`)
      // A stranger's budget is two chunks' worth, and as many blob frames: two in flight from the
      // first (reserved as a whole frame's limit, one was, and a fresh edge's stream waited for
      // each frame to be read before the next).
      expect(sentWhileUnread).toBeGreaterThanOrEqual(2 * MiB)
      expect(sentWhileUnread).toBeLessThanOrEqual(STRANGER_UNREAD_BYTES)

      // Reading, it earns its allowance: every stream gets its whole blob.
      for (const stream of connection.streams.filter(s => s.protocol === FLEET_BLOB_PROTOCOL)) stream.resume()
      await Promise.all(ended)
      expect(received).toEqual(Array(STREAMS).fill(blobBytes))
    } finally {
      await attacker.stop()
    }
  })

  it('that reads them all takes turns at the upload cap as one peer: an edge beside it is not starved', async () => {
    // A gateway behind a metered uplink (--max-upload): the cap is what the two contend for.
    const gateway = await node({ maxUploadBytesPerSecond: 8 * MiB })
    gateway.swarm.serveFleetBlobs(responder(digest => digest === digestOf(100) || digest === digestOf(101) ? 16 * MiB : 1024 * MiB))
    // The edge streamed a blob before, so its reader budget (what it may hold unread) covers the
    // whole 16 MiB and it has a frame waiting at the cap whenever its turn comes, however slowly
    // a loaded machine lets it read. Fresh, it could hold 2 MiB unread: waiting on its reads it
    // was away from the cap, and the turns it missed are owed back only up to
    // RATE_LIMITER_CREDIT_BYTES (a peer away banks nothing), so the hog could lead the edge's
    // share by more than that on a loaded machine without the turns being unfair.
    const edge = await honestEdge(gateway)
    expect(await honestPull(gateway, 101, undefined, edge)).toBe(16 * MiB)
    // The hog speaks the protocol as the daemon's own code does, sixteen blobs at once over its
    // connection to the gateway (as many as one connection may ask).
    const hog = await node()
    await connect(hog, gateway)
    const connection = (hog.swarm as unknown as { node: ShoalNode }).node.getConnections().find(c => c.remotePeer.toString() === gateway.swarm.peerId && c.status === 'open')
    if (connection === undefined) throw new Error('no connection to the gateway')
    const stop = new AbortController()
    try {
      let hogReceived = 0
      let takingTurns: () => void = () => {}
      const hogging = new Promise<void>((resolve) => { takingTurns = resolve })
      const reading = Array.from({ length: STREAMS }, async (_, i) => {
        const answer = await fetchFleetBlob(connection, query(i), {
          signal: stop.signal,
          onData: (bytes) => { if ((hogReceived += bytes) >= 2 * MiB) takingTurns() },
        })
        if (!('data' in answer)) throw new Error(`stream ${i}: ${answer.status}`)
        for await (const data of answer.data) void data
      })
      for (const r of reading) r.catch(() => undefined)
      // The edge asks once the hog is taking bytes (its first megabytes).
      await hogging
      // Counted from the edge's first frame to its last: before it, the hog has the cap alone
      // (the edge's node starts, connects and asks), as it should.
      let hogBefore = 0
      let first = 0
      const honest = await honestPull(gateway, 100, (bytes) => {
        hogBefore = uploadedTo(gateway, hog.swarm.peerId)
        first = bytes
      }, edge)
      expect(honest).toBe(16 * MiB)
      const hogged = uploadedTo(gateway, hog.swarm.peerId) - hogBefore
      const edgeBytes = honest - first
      console.log(`fleet-blob turns: a peer with ${STREAMS} streams was sent ${(hogged / MiB).toFixed(1)} MiB while an edge with one streamed ${edgeBytes / MiB} MiB`)
      // Turns at the cap go round the peers waiting for one: the hog's share is the edge's (and a
      // frame or two its queue had granted as the edge's turns began or ended). Before, whoever
      // woke first took the cap, and the hog's two frames waiting at once took 1.5-2.2 turns to
      // the edge's one (2.7-3.3 times the edge's bytes counted from before the edge started).
      expect(hogged).toBeLessThanOrEqual(edgeBytes + 2 * MiB)
    } finally {
      stop.abort()
    }
  })
})
