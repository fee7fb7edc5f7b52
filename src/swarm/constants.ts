import { CHUNK_SIZE_BYTES, MAX_MANIFEST_BYTES } from '../manifest/index.js'

// ---- protocol names -------------------------------------------------------------------

export const BUNDLE_PROTOCOL = '/shoal/bundle/1.0.0'
export const HAVE_PROTOCOL = '/shoal/have/1.0.0'
export const CHUNK_PROTOCOL = '/shoal/chunk/1.0.0'
/** Our own DHT, so a shoal fleet never mixes its routing tables with the public IPFS DHT. */
export const DHT_PROTOCOL = '/shoal/kad/1.0.0'
/** mDNS service name; shoal daemons answer only each other, not every libp2p node on the LAN. */
export const MDNS_SERVICE_TAG = '_shoal._udp.local'
/**
 * How often a daemon asks the LAN who is there (libp2p's default: 10 s). Every daemon answers
 * every query to the whole LAN, so one query costs each of N daemons an answer and N answers
 * to parse and merge into its peer store: N² per interval per daemon, for nothing once the
 * fleet is connected (the fleet bed, 8 hosts, idle: 1.9% of a core per daemon with 10 s,
 * 0.55% without mDNS). A daemon queries at start, which finds every daemon already up, and
 * every daemon that starts later finds it the same way: the periodic query only repairs a
 * lost datagram or a partition, for which a minute is soon enough (bootstrap peers and the
 * DHT redial too).
 */
export const MDNS_QUERY_INTERVAL_MS = 60_000

// ---- message sizes (every frame is length-prefixed; a larger prefix resets the stream) --

/** A bundle request is one 32-byte ID plus protobuf framing. */
export const MAX_BUNDLE_REQUEST_BYTES = 64
/** The bundle response header: a status and a size. */
export const MAX_BUNDLE_RESPONSE_BYTES = 64
/** The manifest travels in parts of this size, so no single frame holds a huge manifest. */
export const BUNDLE_PART_BYTES = 1024 * 1024
export const MAX_BUNDLE_PART_MESSAGE_BYTES = BUNDLE_PART_BYTES + 64
/** decodeBundleManifest refuses anything larger (manifest text plus chunk tables). */
export const MAX_ENCODED_BUNDLE_BYTES = MAX_MANIFEST_BYTES * 2
/** One bitmap of a 1 TiB object (1 Mi chunks) is 128 KiB; leave room for a batch beside it. */
export const MAX_HAVE_MESSAGE_BYTES = 1024 * 1024
/** Senders cut batches of object states near this size, far below the receive limit. */
export const HAVE_MESSAGE_TARGET_BYTES = 64 * 1024
/**
 * Bundles one neighbour may say it is interested in (holds or pulls): 4096 IDs are ~0.5 MB
 * per neighbour, 32 MB for 64 of them. More is a protocol violation (random IDs flooded in
 * interest messages grew a daemon's heap by 40 MB/s until it died).
 */
export const MAX_INTERESTS_PER_NEIGHBOUR = 4096
/** Bundle IDs per hello/interest message: 2048 × 34 bytes ≈ 70 KiB. */
export const MAX_BUNDLES_PER_HAVE_MESSAGE = 2048
/** A chunk request is a 32-byte object hash, an index and a flag. */
export const MAX_CHUNK_REQUEST_BYTES = 64
/** One chunk plus its header (object, index, status and field tags). */
export const MAX_CHUNK_RESPONSE_BYTES = CHUNK_SIZE_BYTES + 128
/** Object hashes and bundle IDs travel as raw BLAKE3 digests. */
export const HASH_BYTES = 32

// ---- timeouts -------------------------------------------------------------------------

/** A control message that has started arriving must finish within this time, or the stream is reset. */
export const MESSAGE_TIMEOUT_MS = 10_000
/** A 1 MiB chunk response must finish within this time once started: 1 MiB in 60 s is ~17 KB/s, slower than any link we serve. */
export const CHUNK_MESSAGE_TIMEOUT_MS = 60_000
/** An inbound bundle or chunk stream must send its first request within this time after it opens. */
export const FIRST_MESSAGE_TIMEOUT_MS = 10_000
/** Asking one peer for a manifest: the first answer must come within this time. */
export const BUNDLE_REQUEST_TIMEOUT_MS = 15_000
/**
 * A peer with outstanding chunk requests that delivers nothing for this long is stalled: its
 * requests are asked of other peers. Windows are sized to ~0.5 s of its rate, so 15 s is
 * thirty times the expected wait.
 */
export const CHUNK_STALL_TIMEOUT_MS = 15_000
/**
 * A request that has waited this long at a peer that delivered nothing since, and nothing at
 * all for twice this long, is moved to another holder when one can serve it, and the peer is
 * charged (a drip: one chunk every 14 s kept the 15 s stall timer from ever firing). An honest
 * holder, even one whose uplink many askers share, delivers something within 10 s.
 */
export const SLOW_REQUEST_MS = 5_000
/**
 * While nothing arrives from any holder, an edge that has delivered nothing for this long
 * and for OVERDUE_FACTOR times the median chunk time of the other measured holders is
 * overdue: its advertisements stop keeping the gateway away, its window drops to one probe,
 * and each of its requests is also asked of one other holder (the first answer wins). It is
 * not charged: that is SLOW_REQUEST_MS's rule. A silent holder claiming every chunk held a
 * capped 12 s pull idle for the slow rule's 10 s (hostile row 2); now for about this long.
 * scripts/simulate.ts --nodes 10,100 --runs 8: at 2 s and 3 s the gateway sent more copies at
 * 100 nodes (1.38 -> 1.44, honest edges whose uplinks many askers share), at 5 s none more.
 */
export const OVERDUE_MIN_MS = 5_000
/** …and this many times the median time the other measured holders take per chunk. */
export const OVERDUE_FACTOR = 6
/** No request stays with one peer longer than this, however busy its link looks. */
export const CHUNK_REQUEST_TIMEOUT_MS = 60_000
/** How often the swarm checks for stalled requests and refills peers' windows. */
export const SCHEDULER_TICK_MS = 1_000
/**
 * A whole manifest exchange, request to last part, from one peer: per-message deadlines alone
 * let a peer sending one tiny part every 8 s hold a pull forever.
 */
export const BUNDLE_FETCH_TIMEOUT_MS = 60_000
/** Serving one manifest, first request to last part sent. */
export const BUNDLE_SERVE_TIMEOUT_MS = 60_000
/** A have message we send must leave the stream's write buffer within this time. */
export const HAVE_SEND_TIMEOUT_MS = 30_000
/** A DHT provider lookup gives up after this long. */
export const PROVIDER_LOOKUP_TIMEOUT_MS = 30_000
/** Opening a protocol stream on an existing connection. */
export const STREAM_OPEN_TIMEOUT_MS = 10_000
/**
 * Signed records (ref, preheat) a neighbour that is still connected did not take are sent again,
 * as everything held (record-sync.ts): first after this delay, doubling per failed try up to
 * RECORD_RESYNC_MAX_DELAY_MS, RECORD_RESYNC_MAX_TRIES tries in all (1+2+4+8+16+32+60+60 s, about
 * 3 minutes); then the neighbour gets them when it next connects.
 */
export const RECORD_RESYNC_FIRST_DELAY_MS = 1_000
export const RECORD_RESYNC_MAX_DELAY_MS = 60_000
export const RECORD_RESYNC_MAX_TRIES = 8
/** Dialing a discovered or provider peer. */
export const DIAL_TIMEOUT_MS = 10_000
/**
 * How long a daemon holds an mDNS find of a peer with a lower ID, which dials it (quiet-discovery.ts,
 * one connection per pair): as long as that dial may take, so the held find never races it.
 */
export const MDNS_DIAL_WAIT_MS = DIAL_TIMEOUT_MS
/** At most this many finds are held at once; past it a find is dialled at once, as before. */
export const MAX_HELD_FINDS = 256

// ---- have-lists -----------------------------------------------------------------------

/**
 * Chunk arrivals are batched this long before being announced: at 500 MB/s that is ~25
 * chunks per message, and a neighbour learns of a chunk well before it could fetch it anyway.
 */
export const HAVE_BATCH_INTERVAL_MS = 50
/** …or sooner, when this many indexes are waiting. */
export const HAVE_BATCH_MAX_INDEXES = 1024

// ---- scheduler ------------------------------------------------------------------------

/** Requests a peer gets before its rate is known: 4 MiB keeps a LAN link busy from the start. */
export const INITIAL_REQUESTS_PER_PEER = 4
/** Never fewer than two in flight, so the next chunk is queued while one is on the wire. */
export const MIN_REQUESTS_PER_PEER = 2
/** More than 32 MiB in flight per peer only queues at the sender and slows re-asking. */
export const MAX_REQUESTS_PER_PEER = 32
/** A peer's window holds this much of its measured rate in flight. */
export const WINDOW_TARGET_MS = 500
/**
 * Chunks received and awaiting storage (1 MiB each): the memory a node's pulls hold. While
 * this many wait for the store, no new request goes out. Measured (scripts/bench-transfer.ts,
 * 512 MiB on loopback, medians of 3): 8 gave 181 MB/s and a 152 MB puller, 16 gave 116–204
 * MB/s and 165–168 MB, 32 no more speed and 40 MB more; the store's writes are the queue.
 */
export const MAX_BUFFERED_CHUNKS = 16
/**
 * Requests outstanding at all holders together; a limit of its own, apart from the memory
 * above. When one number capped both (8, then 16), scripts/simulate.ts at the daemon's
 * neighbour cap of 64 collapsed (100 nodes: 7.3x the lower bound at 8, 3.5x at 16): fresh
 * chunks' first holders got long queues while most uplinks idled. Outstanding requests cost
 * no memory until their bytes arrive, and then count against MAX_BUFFERED_CHUNKS.
 */
export const MAX_OUTSTANDING_REQUESTS = 64
/**
 * A request queued behind others at a holder moves to an idle holder that would deliver it
 * this many times sooner (by the two peers' measured rates and queues): the margin keeps
 * requests from bouncing between holders of about the same speed.
 */
export const MIGRATE_SPEEDUP = 2
/**
 * A request that has waited this many times one chunk's time at the fastest rate any peer has
 * shown, at a holder that sent us nothing since, waits at a holder busy with other askers. It
 * moves to a holder of the chunk with nothing of ours in flight, even from the head of the
 * queue (scheduler.ts). Measured with scripts/simulate.ts (100 nodes, 20 and 64 neighbours,
 * 3 seeds): 2 and 3 alike, 4 let queues grow again; a fixed 0.6 s at 20 Mbit/s (1.4 chunk
 * times) moved requests back and forth between holders (2.3x the lower bound).
 */
export const BUSY_HOLDER_CHUNK_TIMES = 3
/** …and never sooner than this, so timer noise on a fast LAN does not move requests… */
export const BUSY_HOLDER_MIN_MS = 500
/**
 * …or after this long while no peer's rate is measured yet (the first seconds of a pull,
 * when most requests wait at the gateway or a chunk's first holder). 0.5 s let one seed of
 * the 100-node simulation end at 1.9x the lower bound; 1 s kept all three at 1.48–1.50x.
 */
export const BUSY_HOLDER_UNMEASURED_MS = 1_000
/**
 * Edge holders an edge has requests outstanding with at once while it is short of CPU
 * (scheduler.ts, the set), as BitTorrent unchokes ~4 peers; gateways are not counted. On the
 * 16-host bed a set of 4 rotated every 10 s cost 0.79x the edge CPU per byte of asking all 15
 * (docs/architecture.md, "A set of holders asked at once"); the simulator, which charges no
 * CPU per holder, lost matching with it, hence only when short.
 */
export const MAX_ACTIVE_HOLDERS = 4
/** How often the set's slowest measured member gives its place to another holder (2 s touched every holder and saved nothing). */
export const ACTIVE_HOLDERS_ROTATE_MS = 10_000
/** In the end game a missing chunk is asked of at most this many peers at once. */
export const END_GAME_MAX_REQUESTS_PER_CHUNK = 3
/**
 * …and only once the last request for it has waited this long: a chunk on a healthy LAN link
 * arrives well within it, so duplicates go only to the requests that are really late.
 */
export const END_GAME_MIN_AGE_MS = 1_000
/**
 * …and, judged by the idle candidate's rate alone (not its holder's), only after this many
 * minimum ages: an honest holder on a loaded machine takes longer than a fast candidate's chunk
 * time, and each duplicate is a whole chunk on the wire (the CI fleet bed's edges reached
 * 1.11-1.37x the bundle with the candidate's time alone); a dripping holder is still overtaken.
 */
export const END_GAME_CANDIDATE_FLOOR = 4
/**
 * A gateway that deferred a chunk (it just sent it to another edge) is asked again after
 * this long: a have-list batch from that edge arrives well within it on a LAN, and if none
 * does, the gateway sends the chunk on the second request.
 */
export const GATEWAY_DEFER_MS = 1_000
/**
 * …or one chunk time at the rate that gateway sends to us, when that is longer (its copy to
 * the other edge shares the uplink we measure), but never longer than this: the gateway serves
 * an asker 10 s after the copy left whatever (GATEWAY_SEEDING_POLICY.deferRecentUploadMs).
 */
export const GATEWAY_DEFER_MAX_MS = 8_000
/**
 * An edge holder keeps a gateway away from a chunk only while it could take one more request
 * soon: a measured edge whose full window plus that chunk would take longer than this at its
 * rate to us (and longer than SLOW_EDGE_QUEUE_CHUNK_TIMES of the other holders' median chunk
 * time) does not. Hostile row 2: a holder that claimed every chunk and sent one valid chunk per
 * stream every 14 s was never slow (each request found a delivery after it was sent), never
 * stalled (14 s < 15 s), never overdue (the two honest edges passed the dripped chunks to each
 * other), and its claim kept both edges' pulls off the idle gateway: 24 MiB took over 90 s
 * against 15 s. The gateway's own policy still puts first copies ahead of such requests.
 */
export const SLOW_EDGE_QUEUE_MS = 8_000
/** …and an edge queue is slow only against this many of the others' median chunk time (a fleet whose every holder is that busy is not starved by one of them). */
export const SLOW_EDGE_QUEUE_CHUNK_TIMES = 4
/** Weight of the newest sample in a peer's rate average. */
export const RATE_SMOOTHING = 0.3

// ---- serving --------------------------------------------------------------------------

/** Requests queued on one inbound chunk stream; a peer that exceeds its own window is reset. */
export const MAX_QUEUED_CHUNK_REQUESTS_PER_STREAM = 64
/** Chunk reads started ahead of sending on one stream: the disk reads the next chunk while one is on the wire. */
export const CHUNK_READ_AHEAD = 2
/**
 * What a neighbour we send chunks has to start advertising them: at most this long after its
 * first chunk, and before it was sent more than this many. An honest edge advertises within a
 * have batch (50 ms) of storing its first chunk, but on a busy machine storing takes a while
 * (~0.5 s at load 5-9, by when a gateway had sent it five chunks). One past either limit that
 * still advertises nothing may be taking and not passing on (hostile row 10, a leech): a
 * gateway tells nobody to wait for its copies after either (gateway-seeding.ts: waiting for
 * a copy nobody passes on costs honest edges seconds), and it waits behind askers that share
 * only after both (the chunk server's isTaker: an honest edge taken for one waited a second
 * for every chunk).
 */
export const ADVERTISE_GRACE_MS = 2_000
export const TAKER_AFTER_CHUNKS = 4
/**
 * An edge's stream whose next chunk another edge neighbour holds too waits at most this long
 * after it was asked while another asker's stream has a chunk only this edge holds
 * (sole-copies.ts). Five chunk times at 20 Mbit/s: long enough for the sole chunks queued to go
 * first, short enough that an asker whose chunks others hold too is not kept from the edge
 * for longer than the scheduler waits before moving a request off a busy holder (three chunk
 * times at the fastest rate seen, at least 0.5 s). Simulated: see the architecture notes.
 */
export const SOLE_COPY_HOLD_MS = 2_000
/**
 * Paced uploads (upload-pace.ts): an asker's next chunk is picked only once what is on its way
 * to it (sent and not credited back by its yamux, or read and not sent) is down to what its
 * link carries in UPLOAD_PACE_TARGET_MS, at least UPLOAD_PACE_FLOOR_BYTES and at most
 * UPLOAD_PACE_CAP_BYTES. A request still queued when its CANCEL comes costs no chunk bytes; one
 * handed to the muxer crosses whole.
 * The floor is two pieces: at 20 Mbit/s ~200 ms of link to wake in, read a chunk and hand it
 * down, so the link does not idle between chunks. 50 ms: at twice 40 Mbit/s (the most a
 * delivery-rate sample can overstate a link by) still under the floor.
 */
export const UPLOAD_PACE_FLOOR_BYTES = 512 * 1024
export const UPLOAD_PACE_TARGET_MS = 50
/**
 * …and at most eight chunks, however fast the link looked: what an asker that stops taking
 * our bytes (or whose path clogs) can have committed before its credits stop. Not lower: on
 * loopback a busy receiver's credits come tens of milliseconds late, so a 300 MB/s pipe must
 * hold megabytes (a 1.5 MiB cap held bench-transfer to 31 MB/s against 48-130 unpaced).
 */
export const UPLOAD_PACE_CAP_BYTES = 8 * CHUNK_SIZE_BYTES
/**
 * A gateway's cap stays at a chunk and a half: its job is to send each chunk about once, and the
 * deeper its queue to each asker the later its first copies land at the edges, so its deferral
 * windows run out and it sends again (test/e2e/swarm-fleet.test.ts, 4 edges on loopback beside
 * four busy loops: 1.75 copies with the 8-chunk cap, 1.09/1.21 with this one; two loaded
 * clean-clone runs had failed its 1.5-copy bound at 1.54 and 1.83).
 */
export const UPLOAD_PACE_GATEWAY_CAP_BYTES = 1.5 * CHUNK_SIZE_BYTES
/** Bounds of the wait before looking again at an asker's credits (yamux signals none unless writes wait on them). */
export const UPLOAD_PACE_MIN_WAIT_MS = 2
export const UPLOAD_PACE_MAX_WAIT_MS = 25
/**
 * On a slow link a chunk goes to the muxer in pieces of this size, each a yamux frame the asker
 * credits as it arrives: with one 1 MiB frame the credit came only when the whole chunk had
 * arrived, so the pace saw a full pipe until it was empty. Four frames (and four window
 * updates) per chunk there; where the mark holds two chunks or more, a chunk goes whole.
 */
export const CHUNK_PIECE_BYTES = 256 * 1024
/**
 * A chunk read to be sent is copied into pieces this large (chunk-reads.ts): below the 128 KiB
 * mmap threshold bin/shoal.js gives the daemon, so malloc serves them from memory it holds
 * instead of mapping and faulting in fresh pages for every chunk. Noise's messages are 64 KiB.
 */
export const SEND_PIECE_BYTES = 64 * 1024
/** Chunk reads in progress for all uploads together: bounds the memory uploads hold. */
export const MAX_CONCURRENT_UPLOADS = 16
/**
 * Chunk streams from one peer: one is enough for pipelining; two allow a reconnect overlap.
 * Each may hold a yamux window (16 MiB) unread at the asker, so this also bounds what one
 * peer that never reads can make us queue: 2 × 16 MiB.
 */
export const MAX_CHUNK_STREAMS_PER_CONNECTION = 2
/**
 * Chunk bytes a peer that has read nothing of ours may hold unread (reader-budget.ts): two
 * chunks, so an honest new asker's second chunk goes out while it reads the first. A peer may
 * hold as much unread as it has read, so an asker that reads outgrows this at once.
 */
export const STRANGER_UNREAD_BYTES = 2 * MAX_CHUNK_RESPONSE_BYTES
/** How often a peer over its reader budget is looked at again while its chunks wait. */
export const READER_BUDGET_POLL_MS = 20
/** Chunk streams from one peer, all its connections together (the reader budget is per peer anyway). */
export const MAX_CHUNK_STREAMS_PER_PEER = 4
/**
 * A chunk we send must leave the stream's write buffer within this time, or the asker is not
 * reading: its stream is reset (freeing the upload slot it held) and it is charged.
 */
export const CHUNK_SEND_TIMEOUT_MS = 30_000
/** Have streams from one peer: one per pair; a replacement may overlap the old one briefly. */
export const MAX_HAVE_STREAMS_PER_CONNECTION = 2
/** Manifests served at once, all peers together (each is read into memory to send). */
export const MAX_CONCURRENT_MANIFEST_SERVES = 8
/** Manifests fetched at once by this node's pulls together. */
export const MAX_CONCURRENT_MANIFEST_FETCHES = 8
/** Bundle manifest requests in progress from one peer. */
export const MAX_BUNDLE_STREAMS_PER_CONNECTION = 4

// ---- peers ----------------------------------------------------------------------------

/** A peer that sent a chunk failing verification is refused this long. */
export const BAN_DURATION_MS = 30 * 60_000
/**
 * Inbound connections accepted but not yet through the handshake, all addresses together
 * (libp2p's default of 10 was filled by 11 silent sockets from one host)…
 */
export const MAX_PENDING_UPGRADES = 32
/** …and from one IP: a flood from one host leaves the other slots to everyone else. */
export const MAX_PENDING_UPGRADES_PER_IP = 8
/** Established connections from one IP: room for a NATed site, not for one host's throwaway identities. */
export const MAX_CONNECTIONS_PER_IP = 32
/**
 * New identities (peer IDs not connected now nor seen from that IP within the last hour)
 * one IP may bring: this many at once, then one per NEW_IDENTITY_INTERVAL_MS. A site's
 * daemons keep their keys, so they pay this once; a flood of throwaway identities (a new
 * key after each ban) is slowed to a trickle.
 */
export const MAX_NEW_IDENTITIES_PER_IP = 32
export const NEW_IDENTITY_INTERVAL_MS = 2_000
/** The whole inbound handshake (key check, TLS or noise, yamux), not libp2p's 10 s: a LAN needs milliseconds. */
export const INBOUND_UPGRADE_TIMEOUT_MS = 5_000
/** Discovered peers are dialed until this many are connected. */
export const MAX_NEIGHBOURS = 64

// ---- libp2p tuning (FACTS.md: measured on this machine kind) ------------------------------

/** A 16 MiB yamux window on both ends took a stream from ~250 to ~510 MB/s on loopback. */
export const YAMUX_WINDOW_BYTES = 16 * 1024 * 1024
/**
 * Connection encrypters in order of preference; multistream-select settles on the first both
 * ends speak. Noise first, TLS 1.3 offered too. TLS (node's OpenSSL, AES-GCM) cost a receiver
 * ~16% less CPU per byte in bench-transfer, but its TLSSocket queues below the muxer, so a
 * chunk request cancelled or moved (end game, a move to a faster holder) still crosses the
 * wire whole: on the CI fleet bed at load its edges received 1.10-1.13x the bundle (two of two
 * full runs failed the 1.1x bound) where noise gave 1.03-1.06x under the same load
 * (docs/architecture.md). No duplicate bytes weighs more than the cipher's CPU. Measured
 * again with paced uploads and the fixed 128 KiB mmap threshold (bin/shoal.js's first line):
 * TLS now costs a seed ~2.3x noise's CPU per byte, as node's TLSWrap copies each 1 MiB write's
 * records into a fresh buffer, and every buffer that size is an mmap and page faults there.
 */
export const ENCRYPTERS: ReadonlyArray<'tls' | 'noise'> = ['noise', 'tls']
/**
 * How often each connection is pinged (muxer-pings.ts: yamux's ping frame, no stream; libp2p's
 * monitor pinged every 10 s by default, each ping a new stream at both ends). A dead TCP peer
 * (a killed process) resets its connections at once; the ping is only for a host that
 * vanished, and the timeout below already gives it 30–120 s, so 30 s between pings changes
 * little there.
 */
export const CONNECTION_PING_INTERVAL_MS = 30_000
/**
 * libp2p's monitor by default dropped a connection whose ping reply took 5 s; on a full link
 * the ping waits behind megabytes of chunks, so busy links were dropped.
 */
export const CONNECTION_PING_MIN_TIMEOUT_MS = 30_000
export const CONNECTION_PING_MAX_TIMEOUT_MS = 120_000

// ---- the data lane (lanes.ts, docs/architecture.md "A data lane beside libp2p") ------------

/**
 * The offer of a lane, asked on the libp2p connection the swarm key admitted and noise
 * authenticated. 2.0.0: the asker's direction carries records with credits (lane-records.ts);
 * 1.0.0's askers sent none, and a holder pacing on credits would have stalled them, so the
 * two do not meet: either side of 1.0.0 fails the other's negotiation and stays on libp2p.
 */
export const LANE_PROTOCOL = '/shoal/lane/2.0.0'
/**
 * The offer of a lane that carries one fleet-blob stream (/shoal/fleet-blob/1.0.0's request and
 * answer, fleet-blob-protocol.ts) instead of a chunk stream: the protocol asked names what the
 * lane is for, so the holder hands it to the fleet-blob server, never to the chunk server. Offers,
 * keys and the lanes a peer may hold are the chunk lanes' (LANE_OFFERS_PER_PEER, MAX_LANES_PER_PEER).
 * A node without it fails the negotiation and the blob stream opens on libp2p.
 */
export const BLOB_LANE_PROTOCOL = '/shoal/blob-lane/1.0.0'
/**
 * How long a fleet-blob stream waits for its lane before it opens on libp2p: the whole wait is
 * before the blob's first byte reaches containerd, where a chunk stream's lane comes up while
 * its chunks flow over libp2p (LANE_CONNECT_TIMEOUT_MS). On loopback a lane is up in ~5 ms.
 */
export const BLOB_LANE_CONNECT_TIMEOUT_MS = 2_000
/**
 * The offer of a lane that carries one object whole (object-stream-*.ts): the asker names the
 * object and the first chunk it lacks, and a holder that has it whole sends every byte from there
 * in one stream, paced by TCP alone, each chunk checked by the asker as it lands. Asked for an
 * object a client waits on, when a neighbour advertises it whole: the chunk protocol's per-chunk
 * asks, credits and scheduling cost the two daemons ~0.75 CPU-s per 512 MiB above what the bytes
 * need (docs/architecture.md, "A whole object over one lane"). Offers, keys and the lanes a peer
 * may hold are the chunk lanes'. A node without it fails the negotiation: the chunks go as before.
 */
export const OBJECT_LANE_PROTOCOL = '/shoal/object-lane/1.0.0'
/** An object lane is asked for only for an object with at least this many chunks still to fetch (smaller ones are a few chunk requests). */
export const OBJECT_STREAM_MIN_CHUNKS = 8
/** Chunks the holder reads ahead of the one it sends on an object lane. */
export const OBJECT_STREAM_READ_AHEAD = 2
/**
 * An object lane that completes no chunk for this long is given up and the rest of the object
 * is asked for chunk by chunk from every holder: a holder that trickles or stalls holds the
 * object no longer than the chunk protocol's slow rule would (SLOW_REQUEST_MS).
 */
export const OBJECT_STREAM_CHUNK_TIMEOUT_MS = 5_000
/** After an object lane to a peer was refused or failed, that peer is not asked for the same object on one again for this long. */
export const OBJECT_STREAM_RETRY_MS = 30_000
/** An offer's one-time key is good for one connection within this time: as long as the asker tries (LANE_CONNECT_TIMEOUT_MS). */
export const LANE_OFFER_TTL_MS = 10_000
/** Offers open to one peer at once (a lane per connection, one more while a dead one is replaced)… */
export const LANE_OFFERS_PER_PEER = 2
/** …and to everyone together: a bound on what peers can make us remember. */
export const MAX_LANE_OFFERS = 256
/**
 * Offer, TCP connect and handshake together, from the asker's side: past this the chunks stay
 * on libp2p. A LAN takes milliseconds; on the 16-host bed (every link full, the machine
 * CPU-bound) 183 lanes took 0.2-10.9 s, median 1.3 s, 90th percentile 3.4 s (offers queued
 * behind chunk data, SYNs and handshake packets lost to full queues and sent again ~1 s
 * later): at 2 s 64 of 265 asks ran out. Waiting costs nothing meanwhile: chunks go over
 * libp2p and move to the lane once it is up.
 */
export const LANE_CONNECT_TIMEOUT_MS = 10_000
/**
 * A socket accepted must show an open offer's identity within this (the libp2p port allows a
 * stranger 5 s too), and then finish its handshake within as long again. At 2 s from the
 * accept, 48 handshakes of peers holding a good key ran out on the 16-host bed.
 */
export const LANE_HANDSHAKE_TIMEOUT_MS = 5_000
/** Sockets accepted and not yet through the handshake, all addresses together… */
export const MAX_PENDING_LANES = 16
/** …and from one IP. */
export const MAX_PENDING_LANES_PER_IP = 4
/** Lanes open from one peer: one carries its chunk stream, one more while a replacement comes up. */
export const MAX_LANES_PER_PEER = 2
/** A lane with no byte either way for this long is closed; the next chunk request opens a new one. */
export const LANE_IDLE_TIMEOUT_MS = 120_000
/**
 * A chunk stream opening while its peer's lane is on its way waits this long for it
 * (lanes.ts take): on a LAN a lane is up in milliseconds, on the 20 Mbit/s, 10 ms bed in a few
 * round trips; past this the stream opens on libp2p and moves to the lane once it is up.
 */
export const LANE_FIRST_WAIT_MS = 1_000
/**
 * A peer whose lane failed (no answer, refused, died) is asked for another after this long,
 * doubled with each failure in a row up to LANE_RETRY_AFTER_FAILURE_MS; its chunks stay on
 * libp2p meanwhile. On a loaded bed most failures are the load's, not the peer's: at a flat
 * 60 s the 16-host bed's edges took 0.34-0.91 of their payload over lanes (median 0.64).
 */
export const LANE_FIRST_RETRY_MS = 5_000
/** …and at most this long, for a peer whose lanes keep failing (a firewalled port: one try a minute). */
export const LANE_RETRY_AFTER_FAILURE_MS = 60_000
/**
 * How long a holder waits for the first request on a lane it serves: as long as the lane may
 * sit idle (LANE_IDLE_TIMEOUT_MS), not a libp2p chunk stream's FIRST_MESSAGE_TIMEOUT_MS. An
 * asker's lane often comes up while the scheduler asks that holder nothing for a while (at 16
 * hosts an edge asks each of 15 holders a few chunks a pull); closed at 10 s, 11 of an edge's
 * 23 lanes in a 16-host run went unused, and each next chunk stream to that holder asked for a
 * new one (a TLS handshake at both ends) and carried its first chunks over libp2p while it came
 * up. A silent lane holds a socket and a session, at most MAX_LANES_PER_PEER per connected peer.
 */
export const LANE_FIRST_REQUEST_TIMEOUT_MS = LANE_IDLE_TIMEOUT_MS
/**
 * A lane up and not taken by a chunk stream within this is closed (no failure; the next chunk
 * stream asks again), 2 s short of the holder's wait for its first request
 * (LANE_FIRST_REQUEST_TIMEOUT_MS), so a request sent at the last moment still arrives in time:
 * a chunk stream that took a lane its holder had just closed met EPIPE (11 of 82 failed lanes
 * on the 16-host bed when holders waited 10 s). A holder that closes it sooner (an older one
 * waits FIRST_MESSAGE_TIMEOUT_MS) ends it, and the asker forgets it then (lanes.ts untilTaken).
 * Past RETIRING_STREAM_WAIT_MS, so a chunk stream waiting for a retiring one still finds it.
 */
export const LANE_READY_UNUSED_MS = LANE_FIRST_REQUEST_TIMEOUT_MS - 2_000
/**
 * A lane is asked for only once a peer delivers at least this fast over libp2p; at 0, as the
 * first chunk stream to a peer opens, and that stream waits for it (LANE_FIRST_WAIT_MS), so a
 * pull's chunks from that peer start on the lane. A lane up later than that takes over once the
 * retiring libp2p stream has answered what it carries (fetcher.ts): interleaved, the two
 * streams' chunks came farther apart than the store's in-order prefix hash holds, and a 512 MiB
 * layer was read back whole (manifest-first.test.ts).
 *
 * 0: with credits, the offer asked before chunks fill the libp2p connection and the lane's
 * reads on the read tick, lanes pay on the 20 Mbit/s fleet bed too (2026-12-05, four pairs
 * interleaved with libp2p only: the gateway 30-45% less CPU, all daemons 41.9 against 45.4% of
 * the machine, an edge's CPU per GiB within the noise, wire and time the same), and on
 * loopback both ends together spend a quarter less than over libp2p (docs/architecture.md,
 * "A data lane beside libp2p"). Asked for after a measured rate instead, its offer queued
 * behind chunk data past LANE_CONNECT_TIMEOUT_MS on the bed.
 */
export const LANE_MIN_RATE_BYTES_PER_S = 0
/**
 * The chunk stream that replaces one a lane retired waits up to this long for the retiring
 * stream to answer what it carries, so one holder's chunks keep arriving in order across the
 * switch: the store's prefix hash holds a chunk at most PREFIX_HOLD_CHUNKS ahead, and a lane
 * answering beside the retiring stream put them farther apart, so completing a 512 MiB layer
 * read 471-508 MiB back. An honest holder answers within SLOW_REQUEST_MS; past it the new
 * stream opens anyway (a read back at completion, not a stalled pull). It stays below the two
 * 10 s timers it runs under: STREAM_OPEN_TIMEOUT_MS (the wait is part of the open) and an
 * older holder's FIRST_MESSAGE_TIMEOUT_MS (it closes a lane that carried no request by then). A switch
 * still comes when a lane is up only after LANE_FIRST_WAIT_MS, or after a lane failed or closed idle.
 */
export const RETIRING_STREAM_WAIT_MS = SLOW_REQUEST_MS
/**
 * The asker credits the holder's bytes every this many received (lane-stream.ts), at most once
 * an event-loop turn: half a CHUNK_PIECE_BYTES, so on a slow link the holder's pace sees the
 * bytes arrive at least as finely as yamux's credit per piece showed them, for ~20 credits a
 * second at 20 Mbit/s.
 */
export const LANE_CREDIT_BYTES = 128 * 1024
/** The one-time identity and key of an offer (RFC 8446 external PSK; AES-128-GCM with SHA-256 takes a 32-byte key). */
export const LANE_IDENTITY_BYTES = 16
export const LANE_KEY_BYTES = 32
/** TLS 1.3 only, one suite: the bench's cheapest at both ends on AES-NI hosts. */
export const LANE_CIPHER_SUITE = 'TLS_AES_128_GCM_SHA256'
/**
 * How long the swarm looks for a holder of an object before saying it has none (holder-watch.ts;
 * issue 8: a 404, or the next source, within about a second when no one in the fleet holds the
 * thing). It bounds the one DHT lookup and the have messages already on their way: a
 * neighbour's interest in a bundle it has just made, its state of the object (a round trip and a
 * store read: milliseconds on a LAN, a few hundred at load 20 here). The composer's own steps come
 * before it, so the client's answer lands near a second.
 */
export const NO_HOLDER_SEARCH_MS = 750
/**
 * A DHT lookup that answered before NO_HOLDER_SEARCH_MS ends the search, but not before this:
 * the have messages a neighbour sent just before (its interest in a bundle it has just made, its
 * state of the object) are read first. A neighbour that served the bundle's description is waited
 * for as one that may hold it (holder-watch.ts `claimed`), so this covers only the others.
 */
export const NO_HOLDER_SETTLE_MS = 250
/**
 * A peer that may hold the object and has said nothing of it (interested in its bundle, or it
 * served the bundle's description, or not greeted on the have protocol yet) is waited for this
 * long: a holder whose state is slow to come (a loaded node) is not taken for none at once, and a
 * fellow puller with nothing is given up on well before the 10 s first-chunk wait.
 */
export const SILENT_HOLDER_WAIT_MS = 5_000
