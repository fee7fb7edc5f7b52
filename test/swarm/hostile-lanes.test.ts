import type { TLSSocket } from 'node:tls'
import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree, verifyStore } from '../../src/store/index.js'
import { CHUNK_PROTOCOL } from '../../src/swarm/index.js'
import { CHUNK_SEND_TIMEOUT_MS } from '../../src/swarm/constants.js'
import type { ChunkStream } from '../../src/swarm/chunk-stream.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { openLane } from '../../src/swarm/lane-offer.js'
import type { LaneStream } from '../../src/swarm/lane-stream.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { Attacker } from './attacker.js'
import { connect, patternBytes, useSwarms, writeTree } from './swarm-fixture.js'

/**
 * Issue 13, the row last read in code only: a peer opens data lanes and libp2p chunk streams
 * to a real gateway (real TLS lanes, libp2p over TCP, a real store), asks for chunks on each,
 * reads half of what it asked and stops. What the code claims: each of its chunk sessions,
 * lane or libp2p, is the same chunk server's, under one per-peer reader budget, and a send it
 * leaves unread for CHUNK_SEND_TIMEOUT_MS (30 s) is a slow reader (charged, the stream closed;
 * four close together ban it, and a ban closes its lanes). An honest edge pulls from the same
 * gateway meanwhile.
 */

const MiB = 1024 * 1024
const CHUNKS = 24
/**
 * Chunks the half-reader asks on each of its four streams (64 in all), and reads over all four
 * before it stops every one at once: 12 MiB read earns it 12 MiB unread (its reader budget), so
 * about 24 are sent and half of those read; the rest wait at the gateway. A stream may be served
 * ahead of the others (the budget is the peer's), so it reads at most all 12 and still has
 * chunks asked and waiting: every stream is left waiting. (Stopping each stream at its own
 * count hung under load: one stream starved at one chunk never reached it.)
 */
const ASKED_PER_STREAM = 16
const READ_IN_ALL = 12
const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()
/** The asker's TLS socket, to stop it reading (nothing more arrives, nothing is credited). */
const socketOf = (lane: LaneStream): TLSSocket => (lane as unknown as { socket: TLSSocket }).socket

describe('a peer that opens lanes and chunk streams, reads half and stops', () => {
  const { node, tempDir } = useSwarms()

  it('does not hold up an honest edge pulling from the same gateway, gets no more unread than it read, and is charged a slow reader on each stream left waiting', async () => {
    const gateway = await node({ gateway: true, laneMinRateBytesPerSecond: 0 })
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(4 * ASKED_PER_STREAM * MiB, 2323) })
    const { bundle } = await pushTree(gateway.store, tree)
    const object = Buffer.from(bundle.entries.find(e => e.type === 'F')?.checksum ?? '', 'hex')
    // The edge pulls another bundle of the same size: the gateway's seeding would defer chunks it just sent the half-reader.
    const otherTree = await tempDir()
    await writeTree(otherTree, { 'other.bin': patternBytes(CHUNKS * MiB, 2324) })
    const { bundleId } = await pushTree(gateway.store, otherTree)
    const attacker = await Attacker.start()
    try {
      const connection = await attacker.connect(gateway.address)
      // Two lanes (as many as a peer may hold) and two libp2p chunk streams (as many as one connection may open).
      const lanes = [
        await openLane(connection, { signal: AbortSignal.timeout(10_000), idleTimeoutMs: 300_000 }),
        await openLane(connection, { signal: AbortSignal.timeout(10_000), idleTimeoutMs: 300_000 }),
      ]
      const libp2pStreams = [await connection.newStream(CHUNK_PROTOCOL), await connection.newStream(CHUNK_PROTOCOL)]
      const streams: ChunkStream[] = [...lanes, ...libp2pStreams]
      const stops = [
        ...lanes.map(lane => () => { socketOf(lane).pause() }),
        ...libp2pStreams.map(stream => () => { stream.pause() }),
      ]
      const charged: string[] = []
      gateway.swarm.on('peer:penalized', (e) => { if (e.peer === attacker.peerId) charged.push(e.kind) })
      let chargedFour: () => void = () => {}
      const slowReaders = new Promise<void>((resolve) => { chargedFour = resolve })
      gateway.swarm.on('peer:penalized', (e) => { if (e.peer === attacker.peerId && charged.filter(k => k === 'slow-reader').length >= 4) chargedFour() })
      let readBytes = 0
      let answered = 0
      let halfRead: () => void = () => {}
      const allHalfRead = new Promise<void>((resolve) => { halfRead = resolve })
      for (const [s, stream] of streams.entries()) {
        readFrames(stream, {
          maxFrameBytes: 2 * MiB,
          messageTimeoutMs: 300_000,
          onFrame: (bytes) => {
            const response = ChunkResponse.decode(bytes)
            if (response.status !== ChunkResponse.Status.OK) return
            // Every chunk that reaches the reader counts as read (the muxer credited it).
            readBytes += response.data.byteLength
            if (++answered !== READ_IN_ALL) return
            // A quarter of what it asked read: it reads nothing more on any stream.
            for (const stop of stops) stop()
            halfRead()
          },
        })
        const requests = new Uint8ArrayList()
        for (let i = 0; i < ASKED_PER_STREAM; i++) requests.append(frame(ChunkRequest.encode({ object, index: s * ASKED_PER_STREAM + i, cancel: false })))
        stream.send(requests.subarray())
      }
      await allHalfRead

      // The honest edge pulls while the half-reader sits on its unread chunks.
      const edge = await node()
      await connect(edge, gateway)
      const started = performance.now()
      await edge.swarm.pull(bundleId, { signal: AbortSignal.timeout(60_000) })
      const pullMs = performance.now() - started
      expect((await verifyStore(edge.store, { bundleId })).ok).toBe(true)
      const sent = gateway.swarm.stats().perPeer[attacker.peerId]?.bytesUploaded ?? 0
      console.log(`half-reader: read ${(readBytes / MiB).toFixed(0)} MiB over 2 lanes and 2 libp2p streams, was sent ${(sent / MiB).toFixed(2)} MiB; the edge pulled ${CHUNKS} MiB beside it in ${Math.round(pullMs)} ms`)
      // Its unread bytes are within its reader budget (as much as it read) on all four streams together.
      expect(sent - readBytes).toBeLessThanOrEqual(readBytes)

      // Each stream with a send waiting on it runs out its 30 s: charged a slow reader and
      // closed (four close together would ban it; the score's recovery may keep it just above).
      await slowReaders
      expect(charged.filter(k => k !== 'slow-reader')).toEqual([])
      // The libp2p streams' resets are seen here, a moment after the charge (a lane's close is
      // not, its socket paused).
      await Promise.all(libp2pStreams.map(async stream => {
        if (stream.status !== 'open') return
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => { reject(new Error('a charged libp2p stream was not reset within 10 s')) }, 10_000)
          stream.addEventListener('close', () => { clearTimeout(timer); resolve() }, { once: true })
        })
      }))
      expect(libp2pStreams.map(stream => stream.status)).toEqual(['reset', 'reset'])
    } finally {
      await attacker.stop()
    }
  }, 2 * CHUNK_SEND_TIMEOUT_MS + 60_000)
})
