import type { TLSSocket } from 'node:tls'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { LANE_CREDIT_BYTES } from '../../src/swarm/constants.js'
import { LaneListener, type LaneConnection } from '../../src/swarm/lane-listener.js'
import { dialLane } from '../../src/swarm/lane-offer.js'
import { LaneRecordReader, creditRecords, dataRecordHead } from '../../src/swarm/lane-records.js'
import type { LaneStream } from '../../src/swarm/lane-stream.js'
import { StreamGauge } from '../../src/swarm/reader-budget.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { randomBytes } from 'node:crypto'
import { wakeOrTimeout } from '../../src/wait/index.js'

/**
 * A lane's credits (lane-stream.ts, lane-records.ts): the asker tells the holder what it has
 * taken, so the holder's chunk server counts what sits in the kernels' socket buffers as
 * unread (its pace and reader budget read the same StreamGauge as on libp2p). Real TLS
 * sockets on loopback through the real listener.
 */

const KiB = 1024
const MiB = 1024 * KiB

function connectionOf (peer: string): LaneConnection {
  return { id: `c-${peer}`, remotePeer: { toString: () => peer }, remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/40001'), status: 'open' } as unknown as LaneConnection
}

/** The asker's TLS socket, to stop it reading (a slow reader: its kernel buffers fill, it credits nothing). */
const socketOf = (lane: LaneStream): TLSSocket => (lane as unknown as { socket: TLSSocket }).socket

describe('lane credits', () => {
  const listeners: LaneListener[] = []
  const streams: LaneStream[] = []
  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.abort(new Error('test over'))
    for (const listener of listeners.splice(0)) await listener.stop()
  })

  /** A lane on loopback: the asker's end (dialLane) and the holder's (the listener's). */
  async function lane (): Promise<{ asker: LaneStream, holder: LaneStream }> {
    let served: (stream: LaneStream) => void = () => {}
    const arrived = new Promise<LaneStream>((resolve) => { served = resolve })
    const listener = new LaneListener({ host: '127.0.0.1', port: 0, admits: () => true, onLane: (stream) => { served(stream) } })
    listeners.push(listener)
    await listener.start()
    const asker = await dialLane('127.0.0.1', listener.offer('peer-a', connectionOf('peer-a'))!, { signal: AbortSignal.timeout(5_000), idleTimeoutMs: 30_000 })
    streams.push(asker)
    const holder = await arrived
    streams.push(holder)
    return { asker, holder }
  }

  it('keeps what a holder has sent and the asker has not taken within the holder\'s bound, wherever the bytes wait', async () => {
    const { asker, holder } = await lane()
    socketOf(asker).pause()
    // The chunk server's rule, as the pace applies it: hand down more only while what the
    // asker has not taken is under the bound (here 1 MiB), looking again as the stream drains.
    const gauge = new StreamGauge(holder)
    const bound = MiB
    const piece = new Uint8Array(64 * KiB).fill(7)
    let sent = 0
    const until = Date.now() + 1_500
    while (Date.now() < until) {
      if (gauge.inFlight() < bound) {
        gauge.sentBytes(piece.byteLength)
        sent += piece.byteLength
        holder.send(piece)
        continue
      }
      // Not a sleep for synchronisation: the pace's own poll (yamux and lanes signal no credit).
      await wakeOrTimeout(undefined, { timeoutMs: 10 })
    }
    // Loopback's socket buffers take megabytes; counted as read, they let it all through.
    expect(sent).toBeLessThanOrEqual(bound + piece.byteLength)
    expect(gauge.read()).toBe(0)

    // Once the asker reads, its credits bring the holder's count down to under one credit's worth.
    let received = 0
    asker.addEventListener('message', (evt) => { received += evt.data.byteLength })
    socketOf(asker).resume()
    await expect.poll(() => received, { timeout: 5_000 }).toBe(sent)
    await expect.poll(() => gauge.inFlight(), { timeout: 5_000 }).toBeLessThan(LANE_CREDIT_BYTES)
    expect(gauge.read()).toBeGreaterThan(sent - LANE_CREDIT_BYTES)
  })

  it('credits the holder and hands each frame on whole when frames come in many small records read into their memory', async () => {
    const { asker, holder } = await lane()
    // The chunk client's reader: large frames assembled in memory of its own, which the asker's TLS reads into.
    const given = new Set<ArrayBufferLike>()
    const frames: Buffer[] = []
    readFrames(asker, {
      maxFrameBytes: 2 * MiB,
      messageTimeoutMs: 10_000,
      onFrame: (frame) => { frames.push(Buffer.from(frame)) },
      allocate: (bytes) => {
        const memory = new Uint8Array(bytes)
        given.add(memory.buffer)
        return memory
      },
    })
    const gauge = new StreamGauge(holder)
    // Three 1 MiB frames and a small one between, each sent 1 KiB a record: ~3,000 records.
    const sent = [randomBytes(MiB), randomBytes(100), randomBytes(MiB), randomBytes(MiB)]
    let total = 0
    for (const body of sent) {
      const frame = Buffer.concat([encodeVarint(body.byteLength), body])
      for (let at = 0; at < frame.byteLength; at += KiB) {
        const piece = frame.subarray(at, Math.min(frame.byteLength, at + KiB))
        gauge.sentBytes(piece.byteLength)
        total += piece.byteLength
        holder.send(piece)
      }
    }
    await expect.poll(() => frames.length, { timeout: 10_000 }).toBe(sent.length)
    for (const [i, body] of sent.entries()) expect(frames[i]?.equals(body)).toBe(true)
    expect(given.size).toBe(3)
    // Every byte taken is credited back but what is under one credit's worth.
    await expect.poll(() => gauge.inFlight(), { timeout: 5_000 }).toBeLessThan(LANE_CREDIT_BYTES)
    expect(gauge.read()).toBeGreaterThan(total - LANE_CREDIT_BYTES)
    expect(asker.bytesIn).toBe(total)
  })

  it('carries the asker\'s requests whole through its records, however they are cut', async () => {
    const { asker, holder } = await lane()
    const parts: Uint8Array[] = []
    holder.addEventListener('message', (evt) => { parts.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()) })
    const big = new Uint8Array(200 * KiB).map((_, i) => i % 251)
    asker.send(Uint8Array.of(1, 2, 3))
    asker.send(big)
    const total = 3 + big.byteLength
    await expect.poll(() => parts.reduce((n, p) => n + p.byteLength, 0)).toBe(total)
    const joined = Buffer.concat(parts)
    expect(joined.subarray(0, 3)).toEqual(Buffer.from([1, 2, 3]))
    expect(joined.subarray(3).equals(big)).toBe(true)
    expect(holder.bytesIn).toBe(total)
  })

  it('closes a lane whose asker credits more than it was sent, as the asker\'s fault', async () => {
    const { asker, holder } = await lane()
    holder.send(new Uint8Array(1000))
    const closed = new Promise<Error | undefined>((resolve) => { holder.addEventListener('close', (evt) => { resolve(evt.error) }, { once: true }) })
    // A hostile asker writes its own records: credit for 1001 bytes of the 1000 sent.
    socketOf(asker).write(creditRecords(1001))
    expect(await closed).toMatchObject({ name: 'ProtocolViolationError' })
  })

  it('refuses records of an unknown type, empty ones and oversized ones', () => {
    const fails = (bytes: number[]): unknown => {
      try {
        new LaneRecordReader({ data: () => {}, credit: () => {} }).push(Uint8Array.from(bytes))
        return undefined
      } catch (err) {
        return err
      }
    }
    expect(fails([0x02, 1, 0])).toMatchObject({ name: 'ProtocolViolationError' })
    expect(fails([0x01, 0])).toMatchObject({ name: 'ProtocolViolationError' })
    expect(fails([0x00, 0])).toMatchObject({ name: 'ProtocolViolationError' })
    expect(fails([...dataRecordHead(64 * KiB + 1)])).toMatchObject({ name: 'ProtocolViolationError' })
    expect(fails([0x01, 0xff, 0xff, 0xff, 0xff, 0x01])).toMatchObject({ name: 'ProtocolViolationError' })
    // Split anywhere, a record still reads whole.
    const data: number[] = []
    let credit = 0
    const reader = new LaneRecordReader({ data: (b) => { data.push(...b) }, credit: (n) => { credit += n } })
    for (const byte of [...dataRecordHead(3), 9, 8, 7, ...creditRecords(300_000)]) reader.push(Uint8Array.of(byte))
    expect(data).toEqual([9, 8, 7])
    expect(credit).toBe(300_000)
    expect(reader.atBoundary).toBe(true)
  })
})
