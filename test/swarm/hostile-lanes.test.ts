import type { TLSSocket } from 'node:tls'
import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree, verifyStore } from '../../src/store/index.js'
import { CHUNK_PROTOCOL } from '../../src/swarm/index.js'
import { CHUNK_SEND_TIMEOUT_MS, STRANGER_UNREAD_BYTES } from '../../src/swarm/constants.js'
import type { ChunkStream } from '../../src/swarm/chunk-stream.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { openLane } from '../../src/swarm/lane-offer.js'
import type { LaneStream } from '../../src/swarm/lane-stream.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { within } from '../helpers/within.js'
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
 * What the half-reader reads over its four streams together before it stops every one at once.
 * Its reader budget then lets the gateway send it about as much again, unread (reader-budget.ts).
 */
const READ_IN_ALL = 12
/**
 * Chunks it asks on each stream: more than the gateway could hand down on any one stream, so that
 * every stream is left with requests waiting, which the 30 s slow-reader rule is about. A stream
 * is handed down what its reader took (at most all that was read: 12 chunks, and less than one
 * more on each stream credited part way, so under 16) plus what it holds unread, which the
 * gateway's pace keeps to UPLOAD_PACE_CAP_BYTES (8 chunks) and one read ahead: under 26 in all.
 * With 16 a stream (46840bb) one stream served ahead of the others under load was handed all it
 * asked, had nothing waiting, was rightly not charged, and the wait for four charges hung until
 * the test's 120 s timeout (CI at 46840bb, twice; here with the other three streams asking late).
 * The lanes each count as a connection of their own for the resend window, so they ask the same
 * chunks as the libp2p streams; the two libp2p streams share a connection and ask apart.
 */
const ASKED_PER_STREAM = 32
const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()
/** The asker's TLS socket, to stop it reading (nothing more arrives, nothing is credited). */
const socketOf = (lane: LaneStream): TLSSocket => (lane as unknown as { socket: TLSSocket }).socket

describe('a peer that opens lanes and chunk streams, reads half and stops', () => {
  const { node, tempDir } = useSwarms()

  it('does not hold up an honest edge pulling from the same gateway, gets no more unread than it read, and is charged a slow reader on each stream left waiting', async () => {
    const gateway = await node({ gateway: true, laneMinRateBytesPerSecond: 0 })
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(2 * ASKED_PER_STREAM * MiB, 2323) })
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
      /** When each charge came (ms since the epoch), to say how long after the stop. */
      const chargedAt: number[] = []
      gateway.swarm.on('peer:penalized', (e) => { if (e.peer === attacker.peerId) { charged.push(e.kind); chargedAt.push(Date.now()) } })
      let chargedFour: () => void = () => {}
      const slowReaders = new Promise<void>((resolve) => { chargedFour = resolve })
      gateway.swarm.on('peer:penalized', (e) => { if (e.peer === attacker.peerId && charged.filter(k => k === 'slow-reader').length >= 4) chargedFour() })
      // What reached its readers (all of it credited back while they read): chunk frames whole or in part.
      const libp2pReceived = libp2pStreams.map(() => 0)
      for (const [i, stream] of libp2pStreams.entries()) stream.addEventListener('message', (evt) => { libp2pReceived[i] = (libp2pReceived[i] ?? 0) + evt.data.byteLength })
      const received = (): number => lanes.reduce((sum, lane) => sum + lane.bytesIn, 0) + libp2pReceived.reduce((sum, bytes) => sum + bytes, 0)
      let answered = 0
      let stoppedAt = 0
      let halfRead: () => void = () => {}
      const allHalfRead = new Promise<void>((resolve) => { halfRead = resolve })
      for (const [s, stream] of streams.entries()) {
        readFrames(stream, {
          maxFrameBytes: 2 * MiB,
          messageTimeoutMs: 300_000,
          onFrame: (bytes) => {
            const response = ChunkResponse.decode(bytes)
            if (response.status !== ChunkResponse.Status.OK) return
            if (++answered !== READ_IN_ALL) return
            // It reads nothing more on any stream.
            for (const stop of stops) stop()
            stoppedAt = Date.now()
            halfRead()
          },
        })
        const requests = new Uint8ArrayList()
        for (let i = 0; i < ASKED_PER_STREAM; i++) requests.append(frame(ChunkRequest.encode({ object, index: (s % 2) * ASKED_PER_STREAM + i, cancel: false })))
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
      const read = received()
      console.log(`half-reader: read ${(read / MiB).toFixed(2)} MiB over 2 lanes and 2 libp2p streams, was sent ${(sent / MiB).toFixed(2)} MiB; the edge pulled ${CHUNKS} MiB beside it in ${Math.round(pullMs)} ms`)
      // Its unread bytes are within its reader budget (as much as it read, at least a stranger's) on all four streams together.
      expect(sent - read).toBeLessThanOrEqual(Math.max(STRANGER_UNREAD_BYTES, read))

      // Each stream with a send waiting on it runs out its 30 s: charged a slow reader and
      // closed (four close together would ban it; the score's recovery may keep it just above).
      // Every stream had requests waiting when it stopped, so each is charged CHUNK_SEND_TIMEOUT_MS
      // after: one reader clock per stream across its waits (reader-clock.ts), run in a budget
      // wait also while the room is held by a sibling's chunks stuck behind its send (6004321),
      // and a read seen within a second of when it came, not at the clock's deadline (credits on
      // their way at the stop, seen at 30 s, made 4 of 15 traced runs charge a stream at ~60 s).
      // Past the bound the test says when each charge came after the stop.
      const after = (): string => charged.map((kind, i) => `${kind} at ${(chargedAt[i] ?? 0) - stoppedAt} ms`).join(', ') || 'nothing'
      await within(slowReaders, stoppedAt + CHUNK_SEND_TIMEOUT_MS + 15_000 - Date.now(), () => `four slow-reader charges after the stop (charged: ${after()})`)
      console.log(`slow-reader charges after the stop: ${after()}`)
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
  }, 2 * CHUNK_SEND_TIMEOUT_MS + 90_000)
})
