import { randomBytes } from 'node:crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { BUNDLE_PROTOCOL, CHUNK_PROTOCOL, HAVE_PROTOCOL } from '../../src/swarm/index.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { BundlePart, BundleResponse } from '../../src/swarm/pb/swarm-bundle.pb.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { HaveMessage } from '../../src/swarm/pb/swarm-have.pb.js'
import { RecordBatch, SignedRecord } from '../../src/swarm/pb/swarm-record.pb.js'
import { REF_PROTOCOL } from '../../src/swarm/ref-protocol.js'
import { Attacker } from './attacker.js'
import type { Connection, Stream } from '@libp2p/interface'

/**
 * The adversary of issue 13: a real libp2p node (TCP, noise, yamux, as a daemon) that speaks
 * shoal's protocols from proto/ by hand and plays one attack of the review's table at a time.
 * Every attack stops when `stop()` is called; nothing here waits on a timer to be correct.
 */

export type ChunkAttack =
  /** Row 1: answer DEFERRED to every request. */
  | 'defer'
  /** Row 1: answer CANCELLED to every request (nobody cancelled). */
  | 'cancel'
  /** Row 2: send one valid chunk every 14 s, hold the rest. */
  | 'drip-chunks'
  /** Row 2: send a chunk's bytes at 1 KB/s. */
  | 'drip-bytes'
  /** Never answer at all. */
  | 'silent'

const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()
const unhex = (id: string): Uint8Array<ArrayBuffer> => Uint8Array.from(Buffer.from(id, 'hex'))
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

export class HostilePeer {
  private readonly timers = new Set<NodeJS.Timeout>()
  private stopped = false
  /** Chunk requests the attacker received, for assertions (how often it was asked). */
  chunkRequests = 0
  /** Manifest requests the attacker received (row 6). */
  manifestRequests = 0

  private constructor (readonly attacker: Attacker) {}

  static async start (): Promise<HostilePeer> {
    return new HostilePeer(await Attacker.start())
  }

  get peerId (): string {
    return this.attacker.peerId
  }

  async connect (address: string): Promise<Connection> {
    return await this.attacker.connect(address)
  }

  /**
   * Claims to hold every object of a bundle, on every have stream (opened by either side),
   * and then plays `attack` on the chunk streams its victims open to it. `readChunk` gives
   * the real bytes for attacks that serve some valid chunks.
   */
  async claimEverything (bundleId: string, objects: string[], attack: ChunkAttack, readChunk?: (object: string, index: number) => Promise<Uint8Array>): Promise<void> {
    const claim = frame(HaveMessage.encode({ objects: objects.map(o => ({ object: unhex(o), whole: true, bitmap: new Uint8Array(0) })) }))
    const greet = (stream: Stream): void => {
      // The victim ignores states of objects it has no manifest for yet: claim everything
      // again whenever it says it became interested in something (it started a pull).
      readFrames(stream, {
        maxFrameBytes: 4 * 1024 * 1024,
        messageTimeoutMs: 60_000,
        onFrame: (bytes) => {
          const message = HaveMessage.decode(bytes)
          if ((message.interest?.added.length ?? 0) > 0 && stream.status === 'open') stream.send(claim)
        },
      })
      stream.send(frame(HaveMessage.encode({ hello: { gateway: false, bundles: [unhex(bundleId)] } })))
      stream.send(claim)
    }
    await this.attacker.handle(HAVE_PROTOCOL, (stream) => { greet(stream) })
    for (const connection of this.attacker.node.getConnections()) {
      greet(await connection.newStream(HAVE_PROTOCOL))
    }
    await this.attacker.handle(CHUNK_PROTOCOL, (stream) => { this.playChunks(stream, attack, readChunk) })
  }

  private playChunks (stream: Stream, attack: ChunkAttack, readChunk?: (object: string, index: number) => Promise<Uint8Array>): void {
    const held: ChunkRequest[] = []
    readFrames(stream, {
      maxFrameBytes: 64,
      messageTimeoutMs: 60_000,
      onFrame: (bytes) => {
        const request = ChunkRequest.decode(bytes)
        if (request.cancel) return
        this.chunkRequests++
        if (attack === 'defer' || attack === 'cancel') {
          const status = attack === 'defer' ? ChunkResponse.Status.DEFERRED : ChunkResponse.Status.CANCELLED
          stream.send(frame(ChunkResponse.encode({ object: request.object, index: request.index, status })))
        } else {
          held.push(request)
        }
      },
    })
    if (attack === 'drip-chunks' && readChunk !== undefined) {
      this.every(14_000, () => {
        const request = held.shift()
        if (request === undefined || stream.status !== 'open') return
        void readChunk(hex(request.object), request.index).then((data) => {
          stream.send(frame(ChunkResponse.encode({ object: request.object, index: request.index, status: ChunkResponse.Status.OK, data: new Uint8Array(data) })))
        }, () => {})
      })
    }
    if (attack === 'drip-bytes' && readChunk !== undefined) {
      let pending: Uint8Array | undefined
      let offset = 0
      this.every(1000, () => {
        if (stream.status !== 'open') return
        if (pending === undefined) {
          const request = held.shift()
          if (request === undefined) return
          pending = new Uint8Array(0)
          void readChunk(hex(request.object), request.index).then((data) => {
            pending = frame(ChunkResponse.encode({ object: request.object, index: request.index, status: ChunkResponse.Status.OK, data: new Uint8Array(data) }))
          }, () => {})
          return
        }
        if (offset >= pending.byteLength) return
        stream.send(pending.subarray(offset, offset + 1024))
        offset += 1024
      })
    }
  }

  /** Row 3: opens chunk streams to `connection`, asks for `count` chunks each and never reads. */
  async askAndNeverRead (connection: Connection, object: string, chunkCount: number, streams = 4): Promise<Stream[]> {
    const opened: Stream[] = []
    for (let s = 0; s < streams; s++) {
      let stream: Stream
      try {
        stream = await connection.newStream(CHUNK_PROTOCOL)
      } catch {
        break // The target refuses more streams than it allows per connection.
      }
      stream.pause()
      const requests = new Uint8ArrayList()
      for (let index = 0; index < Math.min(chunkCount, 64); index++) {
        requests.append(frame(ChunkRequest.encode({ object: unhex(object), index, cancel: false })))
      }
      stream.send(requests)
      opened.push(stream)
    }
    return opened
  }

  /**
   * Row 10: a leech. Greets (so it looks like a neighbour) but never advertises a chunk, and
   * asks for every chunk of an object `rounds` times over, reading what comes back. Resolves
   * with how many OK answers each chunk got.
   */
  async leech (connection: Connection, bundleId: string, object: string, chunkCount: number, rounds: number): Promise<number[]> {
    const have = await connection.newStream(HAVE_PROTOCOL)
    readFrames(have, { maxFrameBytes: 4 * 1024 * 1024, messageTimeoutMs: 60_000, onFrame: () => {} })
    have.send(frame(HaveMessage.encode({ hello: { gateway: false, bundles: [unhex(bundleId)] } })))
    const served = new Array<number>(chunkCount).fill(0)
    const stream = await connection.newStream(CHUNK_PROTOCOL)
    let answered = 0
    const total = chunkCount * rounds
    const done = new Promise<void>((resolve, reject) => {
      readFrames(stream, {
        maxFrameBytes: 2 * 1024 * 1024,
        messageTimeoutMs: 60_000,
        onFrame: (bytes) => {
          const response = ChunkResponse.decode(bytes)
          if (response.status === ChunkResponse.Status.OK) served[response.index] = (served[response.index] ?? 0) + 1
          answered++
          if (answered === total) resolve()
          // One request at a time per chunk: ask the next round once this answer is in.
          else if (answered % chunkCount === 0) askRound()
        },
      })
      stream.addEventListener('close', (evt) => { if (answered < total) reject(evt.error ?? new Error('the leech stream closed')) }, { once: true })
    })
    const askRound = (): void => {
      const requests = new Uint8ArrayList()
      for (let index = 0; index < chunkCount; index++) requests.append(frame(ChunkRequest.encode({ object: unhex(object), index, cancel: false })))
      stream.send(requests)
    }
    askRound()
    await done
    stream.abort(new Error('the leech is done'))
    have.abort(new Error('the leech is done'))
    return served
  }

  /** Row 4: a have stream that greets, then adds random bundle IDs to its interest as fast as it can. */
  async floodInterest (connection: Connection, batches: number): Promise<{ sent: number, reset: boolean }> {
    const stream = await connection.newStream(HAVE_PROTOCOL)
    readFrames(stream, { maxFrameBytes: 4 * 1024 * 1024, messageTimeoutMs: 60_000, onFrame: () => {} })
    const closed = new Promise<boolean>((resolve) => { stream.addEventListener('close', (evt) => { resolve(evt.error !== undefined) }, { once: true }) })
    stream.send(frame(HaveMessage.encode({ hello: { gateway: false, bundles: [] } })))
    let sent = 0
    for (let b = 0; b < batches && stream.status === 'open' && !this.stopped; b++) {
      const added = Array.from({ length: 2048 }, () => Uint8Array.from(randomBytes(32)))
      try {
        if (!stream.send(frame(HaveMessage.encode({ interest: { added, removed: [] } })))) await stream.onDrain()
      } catch {
        break
      }
      sent += added.length
    }
    const reset = await Promise.race([closed, new Promise<boolean>(resolve => { this.after(10_000, () => { resolve(false) }) })])
    return { sent, reset }
  }

  /**
   * Row 6: answers manifest requests OK, then one byte of it every 8 s. `onClosed` hears, for
   * each manifest stream the victim drops, how many bytes had been dripped on it by then.
   */
  async dripManifests (onClosed?: (bytesDripped: number) => void): Promise<void> {
    await this.attacker.handle(BUNDLE_PROTOCOL, (stream) => {
      let dripped = 0
      stream.addEventListener('close', () => { onClosed?.(dripped) }, { once: true })
      readFrames(stream, {
        maxFrameBytes: 64,
        messageTimeoutMs: 60_000,
        onFrame: () => {
          this.manifestRequests++
          stream.send(frame(BundleResponse.encode({ status: BundleResponse.Status.OK, totalBytes: 1024n * 1024n })))
          this.every(8_000, () => {
            if (stream.status !== 'open') return
            stream.send(frame(BundlePart.encode({ data: Uint8Array.of(0) })))
            dripped++
          })
        },
      })
    })
  }

  /** Row 8: sends batches of ref records whose signatures are garbage. */
  async floodInvalidRefs (connection: Connection, batches: number, perBatch = 400): Promise<number> {
    let sent = 0
    for (let b = 0; b < batches && connection.status === 'open' && !this.stopped; b++) {
      const records = Array.from({ length: perBatch }, () => SignedRecord.encode({ record: Uint8Array.from(randomBytes(200)), signature: Uint8Array.from(randomBytes(64)) }))
      try {
        const stream = await connection.newStream(REF_PROTOCOL)
        stream.send(frame(RecordBatch.encode({ records })))
        await stream.close()
      } catch {
        break
      }
      sent += perBatch
    }
    return sent
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const timer of this.timers) clearInterval(timer)
    this.timers.clear()
    await this.attacker.stop()
  }

  private every (ms: number, fn: () => void): void {
    const timer = setInterval(fn, ms)
    this.timers.add(timer)
  }

  private after (ms: number, fn: () => void): void {
    const timer = setTimeout(fn, ms)
    this.timers.add(timer)
  }
}
