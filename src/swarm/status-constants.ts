/**
 * Bounds of the fleet view's gossip (/shoal/status/1.0.0). The budget and why it holds at
 * 5,000 nodes: docs/architecture.md, "Fleet view"; measured by scripts/simulate-gossip.ts.
 */

/** One batch per stream: still read, and spoken to neighbours that offer nothing newer. */
export const STATUS_PROTOCOL = '/shoal/status/1.0.0'
/** The same batches as frames on one long-lived stream each way per connection (status-streams.ts). */
export const STATUS_STREAM_PROTOCOL = '/shoal/status/2.0.0'

/** Bundle IDs listed whole per status: a view names what a node holds, it is not an index of it. */
export const MAX_STATUS_COMPLETE = 32
/** Bundles listed as arriving, with their progress. */
export const MAX_STATUS_PARTIAL = 8
export const MAX_STATUS_LABELS = 32
export const MAX_STATUS_LABEL_CHARS = 128
export const MAX_STATUS_VERSION_CHARS = 64
/** 32 + 8 IDs, 32 labels of 2 × 128 characters and the numbers fit with room. */
export const MAX_STATUS_BODY_BYTES = 12 * 1024
/** Heartbeats closer than this are refused: tests run at 300 ms, nothing real needs less. */
export const MIN_STATUS_INTERVAL_MS = 200
/** A node's promised heartbeat is at most this far apart (the adaptive period of ~50,000 nodes). */
export const MAX_STATUS_INTERVAL_MS = 6 * 60 * 60_000
/** The heartbeat period of a small fleet; it grows with the fleet (statusIntervalMs). */
export const DEFAULT_STATUS_INTERVAL_MS = 30_000
/**
 * A status (or refresh) a node accepts is passed to this many neighbours that do not have it.
 * Push gossip with fanout F misses a node with probability ~e^-F per round: 3 misses ~5%, and
 * a node is marked stale only after STALE_AFTER_INTERVALS rounds in a row miss it (~1e-5).
 */
export const STATUS_FANOUT = 3
/**
 * What the gossip may cost each node at steady state, in bytes received per second (it sends
 * about as much): half the 1 KiB/s the issue allows, for headroom over the estimate below.
 */
export const STATUS_BUDGET_BYTES_PER_SECOND = 512
/** A refresh as it travels in a batch (tail 10, sequence 7, signature 66, age 3, framing 2). */
export const STATUS_REFRESH_WIRE_BYTES = 88
/** Marked stale after this many heartbeat periods without a word. */
export const STALE_AFTER_INTERVALS = 4
/** Forgotten after this many. */
export const DROP_AFTER_INTERVALS = 16
/** Nodes remembered; beyond it what one neighbour alone introduced goes first, the longest silent first (status-book.ts). */
export const MAX_KNOWN_NODES = 10_000
/** One stream carries one batch up to this size; a full view is sent as several. */
export const MAX_STATUS_BATCH_BYTES = 256 * 1024
export const MAX_STATUS_STREAMS_PER_CONNECTION = 4
/**
 * Batches read from one stream and not yet applied (each status an Ed25519 verify); past it the
 * stream is paused. A whole view at 5,000 nodes is ~12 batches, and they are applied as they come.
 */
export const MAX_QUEUED_STATUS_BATCHES = 4
/**
 * Statuses verified per neighbour: a burst that holds a whole view (sent on connect), then a
 * rate far above honest forwarding (each costs an Ed25519 verify; a flood is charged).
 */
export const STATUS_RECORDS_BURST = MAX_KNOWN_NODES + 1000
export const STATUS_RECORDS_PER_SECOND = 100
/**
 * Nodes this node never heard of that one neighbour may introduce: a burst, then a slow rate.
 * A status is self-signed, so any stranger can make any number of nodes; without this one
 * connection put 3,000 fakes into a view in 3.5 s (and they were relayed on). The burst holds a
 * gateway relaying 1,000 edges that join at once, twice over; the rate is 3,600 an hour. A
 * joining node's first view (the answer to a digest that named only itself) is not counted:
 * it has no other source. Beyond it new nodes are dropped unread and the neighbour charged.
 */
export const NEW_PUBLISHERS_BURST = 2_000
export const NEW_PUBLISHERS_PER_SECOND = 1
/** A sequence further ahead of our clock than this is refused, so one status cannot pin a node's entry. */
export const MAX_STATUS_CLOCK_AHEAD_MS = 10 * 60_000
/**
 * Forwards wait a third of the period (STATUS_FLUSH_WINDOWS_PER_PERIOD; at most this long) to
 * travel in one batch per neighbour: a stream costs ~220 bytes of framing
 * (STATUS_STREAM_OVERHEAD_BYTES), more than two refreshes, so a large fleet batches harder. A
 * status crosses a 5,000-node fleet in ~16 hops: 8 minutes at this delay, against a 40-minute
 * period.
 */
export const MAX_STATUS_FLUSH_DELAY_MS = 30_000
/**
 * Flush windows per heartbeat period, where MAX_STATUS_FLUSH_DELAY_MS does not cap them (fleets
 * under ~60 nodes, whose period is the configured 30 s). Each batch is a stream, and in a small
 * fleet every daemon neighbours every other: on the 16-host bed each idle daemon opened 1.7
 * status streams a second and took as many (70% of the streams it saw, each a protocol
 * negotiation and a peer-store write on both ends). A tenth of the period made ~46 batches per
 * daemon per period, a third ~33 (a model of the outbox; the bed: docs/architecture.md, "The
 * fleet bed"); a hop then waits 10 s at most, against 4 periods (120 s) before silence marks a
 * node stale.
 */
export const STATUS_FLUSH_WINDOWS_PER_PERIOD = 3
/**
 * What one stream costs besides its batch (an estimate, not measured): multistream-select
 * (~45 bytes), five yamux headers (60), five noise frames' tags and lengths (90), the frame's
 * length prefix and slack. TCP/IP headers are not counted: they are shared with everything else.
 * That is a 1.0.0 stream; on 2.0.0 a batch is a frame on a stream already open (a yamux header,
 * a noise tag and length, the frame's length: ~35 bytes), so scripts/simulate-gossip.ts, which
 * charges this per batch, gives an upper bound.
 */
export const STATUS_STREAM_OVERHEAD_BYTES = 220
/**
 * Absence notices (status-absence.ts): a neighbour that loses a node's connection and cannot
 * dial it again signs that, and the fleet marks the node stale without waiting for its
 * heartbeats to stop arriving (STALE_AFTER_INTERVALS periods: hours at 5,000 nodes). Costs
 * bytes per departure, not per node per period.
 *
 * A witness waits a random time up to this many configured periods (not the adaptive one)
 * before it speaks, and stays silent if ABSENCE_QUORUM others spoke first: the ~20
 * neighbours of a stopped node lose it at the same instant, and two or three notices suffice.
 */
export const ABSENCE_WITNESS_DELAY_INTERVALS = 1
export const ABSENCE_QUORUM = 2
/** Notices kept (and passed on) per node and sequence: more say nothing new. */
export const MAX_ABSENCE_WITNESSES = 3
/**
 * A node is marked stale this many configured periods after the first witness signed (60 s by
 * default): time for the node, if it is alive and only a connection dropped, to hear the notice
 * and refute it with a heartbeat (scripts/simulate-gossip.ts measures both ways at 5,000 nodes).
 */
export const ABSENCE_GRACE_INTERVALS = 2
/** Notices and the heartbeats that refute them wait at most this long to be batched (they are rare). */
export const URGENT_FLUSH_DELAY_MS = 1_000
/**
 * Notices accepted per witness: a burst (a gateway sees many edges leave in a rolling restart),
 * then one a minute. Beyond it a witness's notices are dropped, not charged: other witnesses speak.
 */
export const ABSENCE_NOTICES_BURST = 64
export const ABSENCE_NOTICES_PER_SECOND = 1 / 60
/** Lost neighbours waiting for their witness delay: one per neighbour at most, bounded anyway. */
export const MAX_PENDING_WITNESS = 256
/** An absence notice as it travels in a batch (two tails 20, sequence 8, signature 66, age 4, framing 2). */
export const ABSENCE_NOTICE_WIRE_BYTES = 100
/**
 * A new neighbour's answer to our digest is awaited this long before the next neighbour gets
 * ours (a whole view is ~3 MiB at 5,000 nodes: a minute at 400 kbit/s).
 */
export const STATUS_SYNC_TIMEOUT_MS = 60_000
/** A neighbour's digest is answered with what it lacks once in this long; more often, with nothing. */
export const DIGEST_ANSWER_MIN_INTERVAL_MS = 60_000
