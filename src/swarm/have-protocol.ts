import { ChunkBitmap } from '../manifest/index.js'
import {
  FIRST_MESSAGE_TIMEOUT_MS, HASH_BYTES, HAVE_SEND_TIMEOUT_MS, MAX_INTERESTS_PER_NEIGHBOUR, HAVE_BATCH_INTERVAL_MS, HAVE_BATCH_MAX_INDEXES, HAVE_MESSAGE_TARGET_BYTES, HAVE_PROTOCOL,
  MAX_BUNDLES_PER_HAVE_MESSAGE, MAX_HAVE_MESSAGE_BYTES, MESSAGE_TIMEOUT_MS, STREAM_OPEN_TIMEOUT_MS,
} from './constants.js'
import { bytesToId, idToBytes } from './content-id.js'
import { MessageTimeoutError, ProtocolViolationError, isRemoteFault } from './errors.js'
import { readFrames, sendFrame } from './framing.js'
import { HaveMessage, type ObjectHave } from './pb/swarm-have.pb.js'
import type { HaveList, ObjectHolding, PeerKey } from './have-list.js'
import type { LocalBundles } from './local-bundles.js'
import type { ObjectState } from '../store/index.js'
import type { Connection, Stream } from '@libp2p/interface'
import { abortAfter } from '../wait/index.js'

/**
 * /shoal/have/1.0.0: one long-lived, two-way stream per neighbour pair, opened by the peer
 * whose ID sorts first (so a pair never ends up with two). Each side greets with the bundles
 * it is interested in; then, for every object of a bundle both sides are interested in, it
 * sends its state (whole or bitmap), and from then on batches of chunk indexes as chunks are
 * stored. Partial have-lists are the point: nodes pulling together feed each other.
 */

export interface HaveProtocolComponents {
  store: { objectState: (hash: string) => Promise<ObjectState> }
  local: LocalBundles
  haveList: HaveList
}

export interface HaveProtocolInit {
  gateway: boolean
  /** Called once a neighbour's hello arrived (its interest is in the have-list by then). */
  onNeighbourJoined: (peer: PeerKey, gateway: boolean) => void
  onNeighbourLeft: (peer: PeerKey) => void
  /** A neighbour's state of one object we know of, or chunks newly stored there. */
  onHolding: (peer: PeerKey, object: string, holding: ObjectHolding) => void
  onChunks: (peer: PeerKey, object: string, indexes: number[]) => void
  /** The neighbour broke the protocol (its stream was reset for it): the swarm charges it. */
  onViolation?: (peer: PeerKey, err: Error) => void
}

/** Decode limits: a message of at most MAX_HAVE_MESSAGE_BYTES cannot need more. */
const DECODE_LIMITS = {
  objects: 16_384,
  updates: 16_384,
  hello: { bundles: MAX_BUNDLES_PER_HAVE_MESSAGE },
  interest: { added: MAX_BUNDLES_PER_HAVE_MESSAGE, removed: MAX_BUNDLES_PER_HAVE_MESSAGE },
  updates$: { indexes: 262_144 },
}

export class HaveProtocol {
  private readonly sessions = new Map<PeerKey, HaveSession>()

  constructor (readonly components: HaveProtocolComponents, readonly init: HaveProtocolInit) {}

  /** The lower peer ID of a pair opens the stream; the other waits for it. */
  static opensTo (self: string, remote: string): boolean {
    return self < remote
  }

  handleStream (stream: Stream, connection: Connection): void {
    this.attach(connection.remotePeer.toString(), stream)
  }

  async open (connection: Connection): Promise<void> {
    const stream = await connection.newStream(HAVE_PROTOCOL, { signal: abortAfter(STREAM_OPEN_TIMEOUT_MS) })
    this.attach(connection.remotePeer.toString(), stream)
  }

  has (peer: PeerKey): boolean {
    return this.sessions.get(peer)?.greeted ?? false
  }

  /** We became interested in a bundle (pull started, push, manifest added). */
  localBundleAdded (bundleId: string): void {
    for (const session of this.sessions.values()) session.localBundleAdded(bundleId)
  }

  /** We no longer hold or want a bundle (removed from the store). */
  localBundleRemoved (bundleId: string): void {
    for (const session of this.sessions.values()) session.localBundleRemoved(bundleId)
  }

  localChunkStored (object: string, index: number): void {
    for (const session of this.sessions.values()) session.localChunkStored(object, index)
  }

  localObjectComplete (object: string): void {
    for (const session of this.sessions.values()) session.localObjectComplete(object)
  }

  close (peer: PeerKey, err?: Error): void {
    this.sessions.get(peer)?.close(err)
  }

  closeAll (): void {
    for (const session of [...this.sessions.values()]) session.close()
  }

  /** Session bookkeeping: a newer stream from the same peer replaces the older one. */
  private attach (peer: PeerKey, stream: Stream): void {
    const previous = this.sessions.get(peer)
    const session = new HaveSession(peer, stream, this, () => {
      if (this.sessions.get(peer) !== session) return
      this.sessions.delete(peer)
      if (session.greeted) {
        this.components.haveList.removePeer(peer)
        this.init.onNeighbourLeft(peer)
      }
    })
    this.sessions.set(peer, session)
    previous?.close()
    session.start()
  }
}

type Pending = Set<number> | 'whole'

class HaveSession {
  greeted = false
  /** Objects whose state we have sent or queued: later chunk arrivals are sent as updates. */
  private readonly tracked = new Set<string>()
  private readonly snapshotQueue: string[] = []
  private readonly pending = new Map<string, Pending>()
  private pendingIndexes = 0
  private readonly outbox: Uint8Array[] = []
  private flushTimer: NodeJS.Timeout | undefined
  private flushDue = false
  private pumping = false
  private closed = false
  private helloTimer: NodeJS.Timeout | undefined

  constructor (
    private readonly peer: PeerKey,
    private readonly stream: Stream,
    private readonly protocol: HaveProtocol,
    private readonly onClosed: () => void,
  ) {
    readFrames(stream, {
      maxFrameBytes: MAX_HAVE_MESSAGE_BYTES,
      messageTimeoutMs: MESSAGE_TIMEOUT_MS,
      onFrame: (frame) => { this.onFrame(frame) },
      onEnd: () => { this.close() },
    })
    stream.addEventListener('close', (evt) => {
      if (isRemoteFault(evt.error)) this.protocol.init.onViolation?.(this.peer, evt.error as Error)
      this.finish()
    }, { once: true })
    // A stream that never greets would hold one of the two have slots of its connection.
    this.helloTimer = setTimeout(() => { this.close(new MessageTimeoutError('a hello', FIRST_MESSAGE_TIMEOUT_MS)) }, FIRST_MESSAGE_TIMEOUT_MS)
    this.helloTimer.unref()
  }

  start (): void {
    const { local } = this.protocol.components
    const ids = local.ids()
    const first = ids.slice(0, MAX_BUNDLES_PER_HAVE_MESSAGE)
    this.outbox.push(HaveMessage.encode({ hello: { gateway: this.protocol.init.gateway, bundles: first.map(idToBytes) } }))
    for (let i = MAX_BUNDLES_PER_HAVE_MESSAGE; i < ids.length; i += MAX_BUNDLES_PER_HAVE_MESSAGE) {
      const added = ids.slice(i, i + MAX_BUNDLES_PER_HAVE_MESSAGE).map(idToBytes)
      this.outbox.push(HaveMessage.encode({ interest: { added, removed: [] } }))
    }
    this.pump()
  }

  close (err?: Error): void {
    if (this.closed) return
    if (err !== undefined) this.stream.abort(err)
    else void this.stream.close().catch(() => { this.stream.abort(new Error('have stream close failed')) })
    this.finish()
  }

  localBundleAdded (bundleId: string): void {
    if (this.closed) return
    this.outbox.push(HaveMessage.encode({ interest: { added: [idToBytes(bundleId)], removed: [] } }))
    if (this.greeted && this.protocol.components.haveList.interestOf(this.peer).has(bundleId)) this.track(bundleId)
    this.pump()
  }

  localBundleRemoved (bundleId: string): void {
    if (this.closed) return
    this.outbox.push(HaveMessage.encode({ interest: { added: [], removed: [idToBytes(bundleId)] } }))
    this.pump()
  }

  localChunkStored (object: string, index: number): void {
    if (this.closed || !this.tracked.has(object)) return
    let pending = this.pending.get(object)
    if (pending === 'whole') return
    if (pending === undefined) {
      pending = new Set()
      this.pending.set(object, pending)
    }
    if (!pending.has(index)) {
      pending.add(index)
      this.pendingIndexes++
    }
    this.scheduleFlush()
  }

  localObjectComplete (object: string): void {
    if (this.closed || !this.tracked.has(object)) return
    const pending = this.pending.get(object)
    if (pending instanceof Set) this.pendingIndexes -= pending.size
    this.pending.set(object, 'whole')
    this.scheduleFlush()
  }

  // ---- receiving ----------------------------------------------------------------------

  private onFrame (frame: Uint8Array): void {
    const message = HaveMessage.decode(frame, { limits: DECODE_LIMITS })
    const kinds = Number(message.hello !== undefined) + Number(message.interest !== undefined) +
      Number(message.objects.length > 0) + Number(message.updates.length > 0)
    if (kinds !== 1) throw new ProtocolViolationError(`a have message sets ${kinds} kinds of content, not one`)
    if (!this.greeted && message.hello === undefined) throw new ProtocolViolationError('the first have message is not a hello')
    if (this.greeted && message.hello !== undefined) throw new ProtocolViolationError('a second hello')
    const { haveList } = this.protocol.components
    if (message.hello !== undefined) {
      const bundles = message.hello.bundles.map(bytesToId)
      haveList.addPeer(this.peer, { gateway: message.hello.gateway, bundles })
      this.greeted = true
      clearTimeout(this.helloTimer)
      this.protocol.init.onNeighbourJoined(this.peer, message.hello.gateway)
      for (const id of bundles) this.track(id)
    } else if (message.interest !== undefined) {
      const added = message.interest.added.map(bytesToId)
      const removed = message.interest.removed.map(bytesToId)
      haveList.updateInterest(this.peer, added, removed)
      if (haveList.interestOf(this.peer).size > MAX_INTERESTS_PER_NEIGHBOUR) {
        throw new ProtocolViolationError(`interest in more than ${MAX_INTERESTS_PER_NEIGHBOUR} bundles`)
      }
      if (removed.length > 0) this.untrack(removed)
      for (const id of added) this.track(id)
    }
    for (const have of message.objects) this.receiveObject(have)
    for (const update of message.updates) {
      const object = bytesToId(update.object)
      const local = this.protocol.components.local.object(object)
      // An object we no longer know (a bundle we just dropped): nothing to check it against.
      if (local === undefined) continue
      for (const index of update.indexes) {
        if (index >= local.chunkCount) throw new ProtocolViolationError(`chunk index ${index} of an object of ${local.chunkCount} chunks`)
      }
      const added = haveList.addChunks(this.peer, object, update.indexes, () => new ChunkBitmap(local.chunkCount))
      if (added.length > 0) this.protocol.init.onChunks(this.peer, object, added)
    }
    this.pump()
  }

  private receiveObject (have: ObjectHave): void {
    const object = bytesToId(have.object)
    const local = this.protocol.components.local.object(object)
    if (local === undefined) return
    let holding: ObjectHolding
    if (have.whole) {
      if (have.bitmap.byteLength > 0) throw new ProtocolViolationError('an object state is both whole and a bitmap')
      holding = true
    } else {
      try {
        holding = new ChunkBitmap(local.chunkCount, have.bitmap)
      } catch (err) {
        throw new ProtocolViolationError(`a bitmap does not fit an object of ${local.chunkCount} chunks`, { cause: err })
      }
    }
    this.protocol.components.haveList.setObject(this.peer, object, holding)
    this.protocol.init.onHolding(this.peer, object, holding)
  }

  // ---- sending ------------------------------------------------------------------------

  /**
   * Forgets the objects of bundles the neighbour dropped, but those a bundle it still wants
   * names: it forgot what we told it of them, so when it takes one up again (a pull of a bundle
   * it had dropped) their state must go again. Left tracked, the second interest sent nothing,
   * and the neighbour's pull knew no holder here and stalled.
   */
  private untrack (removed: string[]): void {
    const { local, haveList } = this.protocol.components
    const dropped = removed.flatMap(id => local.has(id) ? local.objectsOf(id) : [])
    if (dropped.length === 0) return
    const wanted = new Set<string>()
    for (const id of haveList.interestOf(this.peer)) {
      if (local.has(id)) for (const object of local.objectsOf(id)) wanted.add(object)
    }
    for (const object of dropped) if (!wanted.has(object)) this.tracked.delete(object)
  }

  /** Queues the state of every object of a bundle both sides are interested in. */
  private track (bundleId: string): void {
    const { local } = this.protocol.components
    if (!local.has(bundleId)) return
    for (const object of local.objectsOf(bundleId)) {
      if (this.tracked.has(object)) continue
      // Tracked before its state is read, so a chunk stored meanwhile is sent as an update after it.
      this.tracked.add(object)
      this.snapshotQueue.push(object)
    }
  }

  private scheduleFlush (): void {
    if (this.pendingIndexes >= HAVE_BATCH_MAX_INDEXES) {
      this.flushDue = true
      this.pump()
      return
    }
    if (this.flushTimer !== undefined || this.flushDue) return
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      this.flushDue = true
      this.pump()
    }, HAVE_BATCH_INTERVAL_MS)
    this.flushTimer.unref()
  }

  /** One writer at a time, so messages keep their order and a slow reader slows only us. */
  private pump (): void {
    if (this.pumping || this.closed) return
    this.pumping = true
    void this.drain()
      .catch((err: unknown) => { this.close(err instanceof Error ? err : new Error(String(err))) })
      .finally(() => {
        this.pumping = false
        // Queued while the drain took its last look (two frames read at once: the second's
        // track() found the pump still running): left, it waited for the next event, if any.
        if (this.outbox.length > 0 || this.snapshotQueue.length > 0 || (this.flushDue && this.pending.size > 0)) this.pump()
      })
  }

  private async drain (): Promise<void> {
    while (!this.closed) {
      const message = this.outbox.shift() ?? await this.nextSnapshot() ?? this.nextUpdate()
      if (message === undefined) return
      // A neighbour that stops reading its have stream loses it (and is charged), not our memory.
      await sendFrame(this.stream, message, { timeoutMs: HAVE_SEND_TIMEOUT_MS })
    }
  }

  private async nextSnapshot (): Promise<Uint8Array | undefined> {
    const objects: ObjectHave[] = []
    let bytes = 0
    while (this.snapshotQueue.length > 0 && bytes < HAVE_MESSAGE_TARGET_BYTES) {
      const object = this.snapshotQueue.shift() as string
      const state = await this.protocol.components.store.objectState(object)
      if (state.state === 'complete') {
        objects.push({ object: idToBytes(object), whole: true, bitmap: new Uint8Array(0) })
        bytes += HASH_BYTES + 4
      } else if (state.state === 'partial') {
        objects.push({ object: idToBytes(object), whole: false, bitmap: Uint8Array.from(state.bitmap.bytes) })
        bytes += HASH_BYTES + 8 + state.bitmap.bytes.byteLength
      }
    }
    return objects.length > 0 ? HaveMessage.encode({ objects }) : undefined
  }

  private nextUpdate (): Uint8Array | undefined {
    if (!this.flushDue || this.pending.size === 0) {
      if (this.pending.size === 0) this.flushDue = false
      return undefined
    }
    const objects: ObjectHave[] = []
    const updates: Array<{ object: Uint8Array<ArrayBuffer>, indexes: number[] }> = []
    for (const [object, pending] of this.pending) {
      if (pending === 'whole') objects.push({ object: idToBytes(object), whole: true, bitmap: new Uint8Array(0) })
      else updates.push({ object: idToBytes(object), indexes: [...pending] })
    }
    this.pending.clear()
    this.pendingIndexes = 0
    this.flushDue = false
    // One kind per message: wholes go first, the rest follow in the next message.
    if (objects.length > 0 && updates.length > 0) {
      for (const update of updates) this.pending.set(bytesToId(update.object), new Set(update.indexes))
      this.pendingIndexes = updates.reduce((n, u) => n + u.indexes.length, 0)
      this.flushDue = true
      return HaveMessage.encode({ objects })
    }
    return objects.length > 0 ? HaveMessage.encode({ objects }) : HaveMessage.encode({ updates })
  }

  private finish (): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.helloTimer)
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer)
    this.onClosed()
  }
}
