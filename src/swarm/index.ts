/**
 * The swarm: one libp2p node per daemon, have-lists, verified chunks from many peers.
 * This file is the module's only door.
 */
import { Swarm } from './swarm.js'
import type { SwarmComponents, SwarmInit } from './swarm-options.js'

export function createSwarm (components: SwarmComponents, init: SwarmInit): Swarm {
  return new Swarm(components, init)
}

export { Swarm } from './swarm.js'
export type { SwarmComponents, SwarmInit, SwarmStore, SwarmLogger, PullOptions, PeerSummary, ManifestSearch } from './swarm-options.js'
export { withReadChunk } from './swarm-store.js'
export type { SwarmEvents, PullProgress } from './swarm-events.js'
export type { SwarmStats, PeerTransferStats } from './swarm-stats.js'
export type { Ban } from './ban-list.js'
export type { NoHolder } from './holder-watch.js'
export { createPeerKey, serializePeerKey, parsePeerKey, peerIdOfKey, type PrivateKey } from './peer-identity.js'
export { generateSwarmKey, checkSwarmKey } from './swarm-key.js'
export { bundleCid } from './content-id.js'
export { Scheduler, type SchedulerInit, type ChunkAssignment, type DeliveryVerdict } from './scheduler.js'
export { soleCopyWaitMs } from './sole-copies.js'
export { GatewaySeeding, GATEWAY_SEEDING_POLICY, type SeedingPolicy, type SeedingView, type ExtraCopyReason } from './gateway-seeding.js'
export * from './errors.js'
export { BUNDLE_PROTOCOL, HAVE_PROTOCOL, CHUNK_PROTOCOL, DHT_PROTOCOL } from './constants.js'
export { signRefRecord, verifyRefRecord, parseTrustedPublisher, RefRecordError, type VerifiedRefRecord } from './ref-record.js'
export { REF_PROTOCOL } from './ref-protocol.js'
export { signPreheatRecord, verifyPreheatRecord, PreheatRecordError, type PreheatIntent, type VerifiedPreheatRecord } from './preheat-record.js'
export { PREHEAT_PROTOCOL, PreheatLimitError, type PreheatRecordStore } from './preheat-protocol.js'
export { FLEET_BLOB_PROTOCOL, FleetBlobFailedError, MAX_FLEET_BLOB_STREAMS_PER_CONNECTION, type FleetBlobQuery, type FleetBlobAnswer, type FleetBlobResponder, type FleetBlobStream } from './fleet-blob-protocol.js'
export { FLEET_BLOB_RELAY_STALL_MS, type FleetBlobSource } from './fleet-blob-asker.js'
export { FLEET_BLOB_DIRECT_ASKERS, FLEET_BLOB_RELAY_FANOUT } from './fleet-blob-relays.js'
export { FLEET_PROTOCOL, type FleetAskOptions, type FleetQuery, type FleetAnswer, type FleetResponder, type FleetResult } from './fleet-protocol.js'
export { StatusGossip } from './status-protocol.js'
export { STATUS_PROTOCOL, STATUS_STREAM_PROTOCOL } from './status-constants.js'
export { statusIntervalMs, statusFlushDelayMs, pickTargets } from './status-pace.js'
export type { FleetGossipStats, StatusSource } from './status-options.js'
export { StatusBook, type FleetNode } from './status-book.js'
export { signStatus, encodeStatusBody, encodeSignedStatus, verifyStatus, StatusRecordError, type NodeStatusFields } from './status-record.js'
export * as statusLimits from './status-constants.js'
// The daemons' libp2p node without the swarm on it: for benchmarks of its transport (scripts/bench-data-lane.ts).
export { createNode, type NodeInit, type ShoalNode } from './libp2p-node.js'
export { Semaphore } from './semaphore.js'
