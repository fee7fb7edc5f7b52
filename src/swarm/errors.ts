import { CodedError } from '../errors/index.js'

/** Base of every swarm error: callers branch on `code`. */
export class SwarmError extends CodedError {
  override name = 'SwarmError'
}

/** A remote peer broke the wire protocol; the stream it used is reset. */
export class ProtocolViolationError extends SwarmError {
  constructor (why: string, options?: ErrorOptions) {
    super('SWARM_PROTOCOL_VIOLATION', `peer broke the protocol: ${why}`, options)
    this.name = 'ProtocolViolationError'
  }
}

export class MessageTooLargeError extends SwarmError {
  constructor (size: number, limit: number) {
    super('SWARM_MESSAGE_TOO_LARGE', `a message of ${size} bytes exceeds the limit of ${limit} bytes`)
    this.name = 'MessageTooLargeError'
  }
}

export class MessageTimeoutError extends SwarmError {
  constructor (what: string, timeoutMs: number) {
    super('SWARM_MESSAGE_TIMEOUT', `${what} did not arrive within ${timeoutMs} ms`)
    this.name = 'MessageTimeoutError'
  }
}

/**
 * A peer opened a stream and sent nothing on it in time: the stream is closed to free its slot,
 * and the peer is not charged. On the 16-host bed honest edges' first chunk requests waited over
 * 10 s behind their own uplinks' queued chunk data (five charges per run, two against one peer).
 */
export class IdleStreamError extends SwarmError {
  constructor (what: string, timeoutMs: number) {
    super('SWARM_IDLE_STREAM', `${what} did not arrive within ${timeoutMs} ms; the stream was closed to free its slot (the peer was not charged: a congested uplink can delay it that long)`)
    this.name = 'IdleStreamError'
  }
}

/** A peer asked for chunks and did not read them: its stream is reset and it is charged. */
export class SlowReaderError extends SwarmError {
  constructor (timeoutMs: number) {
    super('SWARM_SLOW_READER', `the peer did not read a chunk it asked for within ${timeoutMs} ms`)
    this.name = 'SlowReaderError'
  }
}

/**
 * A data lane (lanes.ts) could not open, failed its handshake, or died: its chunk stream's
 * unanswered requests go back to the scheduler and later ones over libp2p. Nobody is charged:
 * a reset on the network looks the same as a peer's.
 */
export class LaneClosedError extends SwarmError {
  constructor (why: string, options?: ErrorOptions) {
    super('SWARM_LANE_CLOSED', why, options)
    this.name = 'LaneClosedError'
  }
}

/**
 * A neighbour did not take a batch we sent (batch-stream.ts): it reset or aborted the stream
 * instead of closing its side after reading. Not charged: its stream limit for the protocol
 * may have been full for a moment.
 */
export class BatchNotTakenError extends SwarmError {
  constructor (status: string) {
    super('SWARM_BATCH_NOT_TAKEN', `the neighbour did not take the batch: the stream ended ${status}`)
    this.name = 'BatchNotTakenError'
  }
}

/** No reachable peer could provide the bundle manifest. */
/** No neighbour and no provider had the bundle (the store's BundleNotFoundError is the local miss). */
export class BundleNotInSwarmError extends SwarmError {
  constructor (bundleId: string, asked: number) {
    super('SWARM_BUNDLE_NOT_FOUND', `no peer provided bundle ${bundleId} (asked ${asked}); check that a node holding it is running and reachable`)
    this.name = 'BundleNotInSwarmError'
  }
}

/**
 * No peer holds or is about to send an object a client waits on (Swarm.untilNoHolder): the
 * client's source is given up on, so it can ask the next one; the pull goes on looking.
 */
export class NoHolderError extends SwarmError {
  constructor (readonly bundleId: string, readonly object: string, why: string) {
    super('SWARM_NO_HOLDER', `the fleet has no holder of it: ${why}`)
    this.name = 'NoHolderError'
  }
}

/** A peer sent a chunk or manifest that failed verification. */
export class BadDataError extends SwarmError {
  constructor (what: string, options?: ErrorOptions) {
    super('SWARM_BAD_DATA', what, options)
    this.name = 'BadDataError'
  }
}

export class SwarmNotStartedError extends SwarmError {
  constructor () {
    super('SWARM_NOT_STARTED', 'the swarm is not running; call start() first')
    this.name = 'SwarmNotStartedError'
  }
}

export class InvalidSwarmKeyError extends SwarmError {
  constructor (why: string) {
    super('SWARM_INVALID_KEY', `invalid swarm key: ${why}; expected "/key/swarm/psk/1.0.0/\\n/base16/\\n<64 hex digits>" as generateSwarmKey() writes it`)
    this.name = 'InvalidSwarmKeyError'
  }
}

/**
 * The swarm key's layer works at a TCP connection's socket (tcp-boundary.ts) and a connection
 * of another transport reached it: a wiring bug (libp2p-node.ts assembles TCP only), not a
 * peer's doing, so it is INTERNAL.
 */
export class SwarmKeyTransportError extends SwarmError {
  constructor () {
    super('INTERNAL', 'the swarm key can only protect connections of libp2p\'s TCP transport')
    this.name = 'SwarmKeyTransportError'
  }
}

export class InvalidPeerKeyError extends SwarmError {
  constructor (why: string, options?: ErrorOptions) {
    super('SWARM_INVALID_PEER_KEY', `invalid peer identity key: ${why}`, options)
    this.name = 'InvalidPeerKeyError'
  }
}

export class InvalidIdError extends SwarmError {
  constructor (id: string) {
    super('SWARM_INVALID_ID', `${JSON.stringify(id.slice(0, 80))} is not a 64-digit lowercase hex BLAKE3 id`)
    this.name = 'InvalidIdError'
  }
}

/**
 * An error that says the remote peer broke the protocol (malformed, oversized, unsolicited or
 * half-sent messages), as opposed to our own abort or a network failure: it is charged.
 */
export function isRemoteFault (err: unknown): boolean {
  return err instanceof ProtocolViolationError || err instanceof MessageTooLargeError || err instanceof MessageTimeoutError
}
