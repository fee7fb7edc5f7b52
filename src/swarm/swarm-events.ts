import { EventEmitter } from 'node:events'
import type { VerifiedPreheatRecord } from './preheat-record.js'

/** What a pull has done so far; bytes count verified chunks of the bundle's objects. */
export interface PullProgress {
  bundleId: string
  totalBytes: number
  presentBytes: number
  totalChunks: number
  presentChunks: number
  /** Peers this node has chunk requests with right now. */
  peers: number
}

/** Events a swarm emits, named `noun:past-verb`. */
export interface SwarmEvents {
  'peer:connected': { peer: string }
  'peer:disconnected': { peer: string }
  /** A neighbour greeted us on the have protocol: its have-list now flows. */
  'neighbour:joined': { peer: string, gateway: boolean }
  'neighbour:left': { peer: string }
  'peer:banned': { peer: string, reason: string, until: number }
  /** A peer was charged for misbehaving (peer-score.ts); `score` is what it has left. */
  'peer:penalized': { peer: string, kind: string, detail: string, score: number }
  'chunk:received': { peer: string, object: string, index: number, bytes: number }
  'chunk:rejected': { peer: string, object: string, index: number, reason: string }
  /**
   * Bytes of a fleet blob stream (/shoal/fleet-blob/1.0.0) arrived from `peer`, the
   * pull-through node or a relay. Not yet verified: the blob's sha256 is checked when it ends
   * (daemon/fleet-blobs.ts), as the upstream's bytes are.
   */
  'fleet-blob:received': { peer: string, bytes: number }
  'pull:progress': PullProgress
  'pull:completed': { bundleId: string }
  /** An object lane ended (object-streams.ts): it brought the whole object, the holder refused, or it fell short (`reason`) and the rest goes chunk by chunk. */
  'object-stream:ended': { peer: string, object: string, outcome: 'complete' | 'not-held' | 'busy' | 'failed', reason?: string }
  /** A preheat record from a trusted publisher was accepted (issued here or gossiped). */
  'preheat:accepted': VerifiedPreheatRecord
  /** A node's status (or a heartbeat of it) was accepted into the fleet view; this node's own too. */
  'status:accepted': { publisher: string, sequence: number }
  /** A neighbour's signed notice that it lost `subject` entered the fleet view (this node's own too). */
  'status:absence': { subject: string, witness: string }
  /**
   * A neighbour's answer to this node's status digest is applied whole: the two views were
   * swapped once, and a first view (this node held only itself) is over, so what the neighbour
   * sends after it counts against its allowance of introductions.
   */
  'status:synced': { peer: string }
  /** A background step failed (a DHT announce, a dial); the swarm carries on. */
  'warning': { message: string, error?: Error }
}

export class SwarmEventEmitter {
  private readonly emitter = new EventEmitter()

  constructor () {
    // Tests and the daemon may watch many events at once; this is not a leak.
    this.emitter.setMaxListeners(0)
  }

  on<E extends keyof SwarmEvents> (event: E, listener: (detail: SwarmEvents[E]) => void): void {
    this.emitter.on(event, listener)
  }

  off<E extends keyof SwarmEvents> (event: E, listener: (detail: SwarmEvents[E]) => void): void {
    this.emitter.off(event, listener)
  }

  once<E extends keyof SwarmEvents> (event: E, listener: (detail: SwarmEvents[E]) => void): void {
    this.emitter.once(event, listener)
  }

  emit<E extends keyof SwarmEvents> (event: E, detail: SwarmEvents[E]): void {
    this.emitter.emit(event, detail)
  }
}
