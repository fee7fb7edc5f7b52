import type { Connection, Libp2p, PrivateKey, Stream } from '@libp2p/interface'
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { receiveBatch, sendBatch } from './batch-stream.js'
import { MessageTooLargeError, ProtocolViolationError } from './errors.js'
import { StatusBatch, type SignedStatus, type StatusRefresh } from './pb/swarm-status.pb.js'
import { RecordAllowance } from './record-allowance.js'
import { StatusBook, type FleetNode, type HeldStatus } from './status-book.js'
import {
  DEFAULT_STATUS_INTERVAL_MS, DROP_AFTER_INTERVALS, MAX_KNOWN_NODES, MAX_STATUS_BATCH_BYTES, MAX_STATUS_CLOCK_AHEAD_MS,
  MAX_STATUS_FLUSH_DELAY_MS, MAX_STATUS_INTERVAL_MS, MAX_STATUS_STREAMS_PER_CONNECTION, MIN_STATUS_INTERVAL_MS,
  STATUS_BUDGET_BYTES_PER_SECOND, STATUS_FANOUT, STATUS_RECORDS_BURST, STATUS_RECORDS_PER_SECOND, STATUS_REFRESH_WIRE_BYTES,
} from './status-constants.js'
import { type Bytes, decodeStatusBody, encodeStatusBody, signStatus, verifyStatus, verifyStatusRefresh, type NodeStatusFields } from './status-record.js'

export const STATUS_PROTOCOL = '/shoal/status/1.0.0'

/** What the node says about itself each heartbeat (the period is the gossip's to fill in). */
export type StatusSource = (options: { signal?: AbortSignal }) => Promise<Omit<NodeStatusFields, 'intervalMs'>>

export interface StatusGossipComponents {
  privateKey: PrivateKey
  connections: () => Connection[]
  source: StatusSource
  log: { debug: (msg: string, fields?: Record<string, unknown>) => void, warn: (msg: string, fields?: Record<string, unknown>) => void }
}

export interface StatusGossipInit {
  /** The heartbeat period of a small fleet (DEFAULT_STATUS_INTERVAL_MS); it grows with the fleet (statusIntervalMs). */
  intervalMs?: number
  /** A neighbour sent a forged or malformed status, or too many: the swarm charges it (peer-score.ts). */
  onInvalid?: (peer: string, why: string) => void
  /** A status entered the view (a new node, a heartbeat or a change). */
  onAccepted?: (publisher: string, sequence: number) => void
  now?: () => number
  random?: () => number
}

/** Each step of the adaptive period is a quarter longer than the last (see statusIntervalMs). */
const INTERVAL_STEP = 1.25

/**
 * The heartbeat period for a fleet of `knownNodes`: the configured one, lengthened in steps of
 * a quarter until this node's share of everyone's refreshes (each received about STATUS_FANOUT
 * times) fits STATUS_BUDGET_BYTES_PER_SECOND. In steps, not an exact fit, so a fleet whose size
 * wobbles does not change each node's promised period (its body) at every heartbeat. Shared
 * with scripts/simulate-gossip.ts.
 */
export function statusIntervalMs (knownNodes: number, configuredMs = DEFAULT_STATUS_INTERVAL_MS): number {
  const neededMs = knownNodes * STATUS_FANOUT * STATUS_REFRESH_WIRE_BYTES * 1000 / STATUS_BUDGET_BYTES_PER_SECOND
  let interval = Math.max(MIN_STATUS_INTERVAL_MS, configuredMs)
  while (interval < neededMs && interval * INTERVAL_STEP <= MAX_STATUS_INTERVAL_MS) interval *= INTERVAL_STEP
  return Math.round(interval)
}

/**
 * Up to `fanout` of `candidates`, chosen at random (a partial Fisher–Yates shuffle): push
 * gossip reaches everyone with high probability only when targets are random. Shared with the simulator.
 */
export function pickTargets<T> (candidates: T[], fanout: number, random: () => number): T[] {
  const pool = [...candidates]
  const picked: T[] = []
  while (picked.length < fanout && pool.length > 0) {
    const i = Math.floor(random() * pool.length)
    picked.push(pool[i] as T)
    pool[i] = pool[pool.length - 1] as T
    pool.pop()
  }
  return picked
}

interface Known { sequence: number, bodyHash: string }

/**
 * /shoal/status/1.0.0: each node signs a small status about itself every period and the fleet
 * passes it on (push gossip, STATUS_FANOUT neighbours per new status, a refresh instead of the
 * body when the neighbour holds it); `view()` is every node this one has heard of. Design and
 * cost: docs/architecture.md, "Fleet view".
 */
export class StatusGossip {
  readonly book: StatusBook
  readonly peerId: string
  private readonly publisherKey: Bytes
  private readonly now: () => number
  private readonly random: () => number
  /** neighbour → publisher → what that neighbour is known to hold (it sent it, or we did). */
  private readonly knows = new Map<string, Map<string, Known>>()
  /** neighbour → publishers to send it at the next flush. */
  private readonly pending = new Map<string, Set<string>>()
  private readonly allowance: RecordAllowance
  private heartbeatTimer: NodeJS.Timeout | undefined
  private flushTimer: NodeJS.Timeout | undefined
  private controller = new AbortController()
  private topology: string | undefined
  private node: Pick<Libp2p, 'handle' | 'register' | 'unregister'> | undefined

  constructor (private readonly components: StatusGossipComponents, private readonly init: StatusGossipInit = {}) {
    this.now = init.now ?? Date.now
    this.random = init.random ?? Math.random
    this.peerId = peerIdFromPublicKey(components.privateKey.publicKey).toString()
    this.publisherKey = Uint8Array.from(publicKeyToProtobuf(components.privateKey.publicKey))
    this.book = new StatusBook(this.peerId, this.now)
    this.allowance = new RecordAllowance({ burst: STATUS_RECORDS_BURST, perSecond: STATUS_RECORDS_PER_SECOND, maxPeers: MAX_KNOWN_NODES, now: this.now })
  }

  /** The current heartbeat period (it grows with the fleet). */
  get intervalMs (): number {
    return statusIntervalMs(this.book.size, this.init.intervalMs)
  }

  /** Before the node starts: the handler and the topology that hands a new neighbour the view. */
  async attach (node: Pick<Libp2p, 'handle' | 'register' | 'unregister'>): Promise<void> {
    this.controller = new AbortController()
    this.node = node
    await node.handle(STATUS_PROTOCOL, (stream, connection) => { void this.handle(stream, connection) }, {
      maxInboundStreams: MAX_STATUS_STREAMS_PER_CONNECTION, maxOutboundStreams: MAX_STATUS_STREAMS_PER_CONNECTION,
    })
    // A new neighbour gets the whole view once; after that only what changes.
    this.topology = await node.register(STATUS_PROTOCOL, {
      onConnect: (peerId) => { this.queueAll(peerId.toString()) },
    })
  }

  /** Once the node runs: the first heartbeat now, the next ones every period. */
  async start (): Promise<void> {
    await this.heartbeat()
  }

  stop (): void {
    this.controller.abort(new Error('the status gossip is stopping'))
    clearTimeout(this.heartbeatTimer)
    clearTimeout(this.flushTimer)
    this.heartbeatTimer = undefined
    this.flushTimer = undefined
    if (this.topology !== undefined) this.node?.unregister(this.topology)
    this.topology = undefined
  }

  view (): FleetNode[] {
    return this.book.view()
  }

  /** Signs this node's status now (a heartbeat; also after a change worth telling at once). */
  async publish (): Promise<void> {
    const signal = this.controller.signal
    const fields = { ...await this.components.source({ signal }), intervalMs: this.intervalMs }
    const body = encodeStatusBody(fields)
    const held = this.book.get(this.peerId)
    // The clock, but always past the last: two heartbeats in one millisecond still order.
    const sequence = Math.max(this.now(), (held?.sequence ?? 0) + 1)
    const signed = await signStatus(this.components.privateKey, body, sequence)
    signal.throwIfAborted()
    this.book.accept({
      publisher: this.peerId, publisherKey: this.publisherKey, sequence, bodyHash: signed.bodyHash,
      fields: decodeStatusBody(body, signed.bodyHash), body, stamp: signed.stamp, signature: signed.signature, heardAt: this.now(),
    })
    this.init.onAccepted?.(this.peerId, sequence)
    this.spread(this.peerId)
  }

  private async heartbeat (): Promise<void> {
    try {
      await this.publish()
    } catch (err) {
      if (this.controller.signal.aborted) return
      this.components.log.warn('could not publish this node\'s status', { err })
    }
    if (this.controller.signal.aborted) return
    this.book.sweep()
    this.heartbeatTimer = setTimeout(() => { void this.heartbeat() }, this.intervalMs)
    this.heartbeatTimer.unref()
  }

  /** Inbound stream: one batch, then the sender closes. */
  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const from = connection.remotePeer.toString()
    let batch: StatusBatch
    try {
      batch = await receiveBatch(stream, { maxBytes: MAX_STATUS_BATCH_BYTES, decode: decodeBatch })
    } catch (err) {
      // Only what the sender got wrong is charged: a reset or a timeout is what a loaded,
      // honest node's stream does, and charging it banned whole honest fleets under load.
      if (err instanceof ProtocolViolationError || err instanceof MessageTooLargeError) this.init.onInvalid?.(from, `status batch: ${err.message}`)
      else this.components.log.debug('status batch not received', { from, err })
      return
    }
    const count = batch.statuses.length + batch.refreshes.length
    let allowed = this.allowance.take(from, count)
    if (allowed < count) this.init.onInvalid?.(from, `sent ${count} statuses, more than its allowance of ${allowed}`)
    for (const signed of batch.statuses) {
      if (allowed-- <= 0) break
      await this.applyStatus(signed, from)
    }
    for (const refresh of batch.refreshes) {
      if (allowed-- <= 0) break
      await this.applyRefresh(refresh, from)
    }
  }

  private async applyStatus (signed: SignedStatus, from: string): Promise<void> {
    let status
    try {
      status = await verifyStatus(signed)
    } catch (err) {
      // A status signed by another key than the node it names lands here: charged to the sender.
      this.components.log.debug('node status refused', { from, err })
      this.init.onInvalid?.(from, err instanceof Error ? err.message : String(err))
      return
    }
    this.noteKnown(from, status.publisher, { sequence: status.sequence, bodyHash: status.bodyHash })
    if (!this.plausible(status.publisher, status.sequence, from)) return
    this.keep({
      publisher: status.publisher, publisherKey: status.publisherKey, sequence: status.sequence, bodyHash: status.bodyHash,
      fields: status.fields, body: status.body, stamp: status.stamp, signature: status.signature, heardAt: this.heardAt(signed.ageMs),
    }, from)
  }

  private async applyRefresh (refresh: StatusRefresh, from: string): Promise<void> {
    const held = this.book.byKeyTail(refresh.publisherTail)
    const sequence = Number(refresh.sequence)
    // Unknown body or nothing new: the sender's knowledge of us was out of date, not a fault.
    if (held === undefined || sequence <= held.sequence) return
    const stamp = await verifyStatusRefresh(held, sequence, refresh.signature)
    if (stamp === undefined) {
      this.components.log.debug('node status refresh did not verify against the held body', { from, publisher: held.publisher })
      return
    }
    this.noteKnown(from, held.publisher, { sequence, bodyHash: held.bodyHash })
    if (!this.plausible(held.publisher, sequence, from)) return
    this.keep({ ...held, sequence, stamp, signature: refresh.signature, heardAt: this.heardAt(refresh.ageMs) }, from)
  }

  /** Never another's word about this node, and no sequence far ahead of our clock. */
  private plausible (publisher: string, sequence: number, from: string): boolean {
    if (publisher === this.peerId) return false
    if (sequence > this.now() + MAX_STATUS_CLOCK_AHEAD_MS) {
      this.components.log.debug('node status refused: its sequence is ahead of this node\'s clock', { from, publisher, sequence })
      return false
    }
    return true
  }

  private keep (status: HeldStatus, from: string): void {
    if (this.book.accept(status) !== 'accepted') return
    this.init.onAccepted?.(status.publisher, status.sequence)
    this.spread(status.publisher, from)
  }

  private heardAt (ageMs: number): number {
    // Relayed a long time after it was heard first: as old as its relays say, at most until dropped.
    return this.now() - Math.min(ageMs, DROP_AFTER_INTERVALS * MAX_STATUS_INTERVAL_MS)
  }

  private noteKnown (neighbour: string, publisher: string, known: Known): void {
    let map = this.knows.get(neighbour)
    if (map === undefined) {
      map = new Map()
      this.knows.set(neighbour, map)
    }
    if ((map.get(publisher)?.sequence ?? -1) < known.sequence) map.set(publisher, known)
    if (map.size > MAX_KNOWN_NODES) {
      const first = map.keys().next().value
      if (first !== undefined) map.delete(first)
    }
  }

  /** Queues a status for STATUS_FANOUT random neighbours that are not known to hold it. */
  private spread (publisher: string, except?: string): void {
    const held = this.book.get(publisher)
    if (held === undefined) return
    const candidates = this.neighbours().filter(n => n !== except && (this.knows.get(n)?.get(publisher)?.sequence ?? -1) < held.sequence)
    for (const n of pickTargets(candidates, STATUS_FANOUT, this.random)) this.queue(n, publisher)
  }

  private queueAll (neighbour: string): void {
    for (const held of this.book.all()) this.queue(neighbour, held.publisher)
  }

  private queue (neighbour: string, publisher: string): void {
    let set = this.pending.get(neighbour)
    if (set === undefined) {
      set = new Set()
      this.pending.set(neighbour, set)
    }
    set.add(publisher)
    if (this.flushTimer === undefined && !this.controller.signal.aborted) {
      this.flushTimer = setTimeout(() => { this.flushTimer = undefined; void this.flush() }, Math.min(MAX_STATUS_FLUSH_DELAY_MS, this.intervalMs / 10))
      this.flushTimer.unref()
    }
  }

  private neighbours (): string[] {
    const peers = new Set<string>()
    for (const c of this.components.connections()) if (c.status === 'open') peers.add(c.remotePeer.toString())
    return [...peers]
  }

  private async flush (): Promise<void> {
    const connections = new Map<string, Connection>()
    for (const c of this.components.connections()) if (c.status === 'open') connections.set(c.remotePeer.toString(), c)
    // Forget what departed neighbours held: their knowledge is the only per-neighbour state.
    for (const n of this.knows.keys()) if (!connections.has(n)) this.knows.delete(n)
    const work = [...this.pending]
    this.pending.clear()
    await Promise.allSettled(work.map(async ([neighbour, publishers]) => {
      const connection = connections.get(neighbour)
      if (connection !== undefined) await this.sendTo(connection, neighbour, publishers)
    }))
  }

  private async sendTo (connection: Connection, neighbour: string, publishers: Set<string>): Promise<void> {
    const batches: StatusBatch[] = []
    let batch: StatusBatch = { statuses: [], refreshes: [] }
    let bytes = 0
    const now = this.now()
    for (const publisher of publishers) {
      const held = this.book.get(publisher)
      if (held === undefined) continue
      const known = this.knows.get(neighbour)?.get(publisher)
      if (known !== undefined && known.sequence >= held.sequence) continue
      const ageMs = Math.min(0xffffffff, Math.max(0, now - held.heardAt))
      if (known?.bodyHash === held.bodyHash) {
        batch.refreshes.push({ publisherTail: Uint8Array.from(held.publisherKey.subarray(-8)), sequence: BigInt(held.sequence), signature: held.signature, ageMs })
        bytes += STATUS_REFRESH_WIRE_BYTES
      } else {
        batch.statuses.push({ stamp: held.stamp, signature: held.signature, body: held.body, ageMs })
        bytes += held.stamp.byteLength + held.signature.byteLength + held.body.byteLength + 16
      }
      this.noteKnown(neighbour, publisher, { sequence: held.sequence, bodyHash: held.bodyHash })
      if (bytes > MAX_STATUS_BATCH_BYTES - 16 * 1024) {
        batches.push(batch)
        batch = { statuses: [], refreshes: [] }
        bytes = 0
      }
    }
    if (batch.statuses.length + batch.refreshes.length > 0) batches.push(batch)
    for (const b of batches) {
      try {
        await sendBatch(connection, STATUS_PROTOCOL, StatusBatch.encode(b), { signal: this.controller.signal })
      } catch (err) {
        // Lost with the connection; the next heartbeat (or the next connect's full view) repairs it.
        this.components.log.debug('could not send node statuses', { peer: neighbour, err })
        this.knows.delete(neighbour)
        return
      }
    }
  }
}

/** A batch as received; an undecodable one is the sender's fault. */
function decodeBatch (frame: Uint8Array): StatusBatch {
  try {
    return StatusBatch.decode(frame, { limits: { statuses: STATUS_RECORDS_BURST, refreshes: STATUS_RECORDS_BURST } })
  } catch (err) {
    throw new ProtocolViolationError(`a status batch does not decode: ${err instanceof Error ? err.message : String(err)}`)
  }
}
