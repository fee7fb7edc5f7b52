// The fleet view's gossip at scale (issue 11): what each node's status heartbeats cost each
// node at steady state, for several fleet sizes, with the daemon's own period rule
// (statusIntervalMs), fanout (STATUS_FANOUT), target choice (pickTargets) and real message
// sizes (a real status signed with a real key, encoded as the wire carries it).
//
//   node --import tsx scripts/simulate-gossip.ts [--nodes 1000,5000] [--degree 20] [--periods 3]
//        [--change 0.02] [--seed 1] [--departures 20] [--churn 1] [--probe-ms 10]
//
// Model: a random near-regular graph of `degree` neighbours per node (scripts/simulate/topology.ts).
// Steady state: every node already holds every other's status body. Each period every node
// signs one heartbeat; with probability `--change` its body changed too (a pull finished).
// A node that accepts a new heartbeat passes it to STATUS_FANOUT random neighbours other than
// the one it came from (the daemon also skips neighbours it knows hold it, so this is the upper
// bound); a neighbour that holds the body gets a refresh, else the full status. Streams: one per
// neighbour per flush window (statusFlushDelayMs: a third of the period, at most MAX_STATUS_FLUSH_DELAY_MS),
// counted from each link's deliveries assuming heartbeats spread evenly in time (Poisson).
// Prints per size: the period, bytes per node per second (payload, and with the estimated
// stream framing), the share of nodes each heartbeat reached, how many (observer, node) pairs
// went STALE_AFTER_INTERVALS periods in a row without a heartbeat (false "stale" marks), the
// time to mark a stopped node stale, and the one-off cost of a node joining.
// Then absence notices (scripts/simulate/gossip-absence.ts): `--departures` sample nodes stop,
// one at a time; per size: seconds until every other node marks it stale (median, p99, max over
// nodes and departures), the share of nodes a notice reached, notices signed and bytes per node
// per departure, that cost at `--churn` departures per node per day, and for as many dropped
// connections between live nodes, how fast the refutation arrives and how many nodes marked the
// live node stale first. `--probe-ms` is how long a witness's dial of the stopped node takes to
// fail (10 ms: refused; 10,000 ms: the host is gone and the dial times out).
import '../src/polyfill.js'
import { randomBytes } from 'node:crypto'
import { encodeVarint } from '../src/swarm/framing.js'
import type { HeldStatus } from '../src/swarm/status-book.js'
import { encodeDigest } from '../src/swarm/status-digest.js'
import { StatusBatch } from '../src/swarm/pb/swarm-status.pb.js'
import { createPeerKey, encodeStatusBody, pickTargets, signStatus, statusFlushDelayMs, statusIntervalMs, statusLimits } from '../src/swarm/index.js'
import { simulateDeparture, simulateRefutation, type Spread } from './simulate/gossip-absence.js'
import { seededRandom } from './simulate/random.js'
import { buildTopology } from './simulate/topology.js'

export interface Options { nodes: number[], degree: number, periods: number, change: number, seed: number, departures?: number, churn?: number, probeMs?: number }

function parseArgs (argv: string[]): Options {
  const options: Options = { nodes: [1000, 5000], degree: 20, periods: 3, change: 0.02, seed: 1, departures: 20, churn: 1, probeMs: 10 }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const value = argv[i + 1] ?? ''
    if (flag === '--nodes') options.nodes = value.split(',').map(Number)
    else if (flag === '--degree') options.degree = Number(value)
    else if (flag === '--periods') options.periods = Number(value)
    else if (flag === '--change') options.change = Number(value)
    else if (flag === '--seed') options.seed = Number(value)
    else if (flag === '--departures') options.departures = Number(value)
    else if (flag === '--churn') options.churn = Number(value)
    else if (flag === '--probe-ms') options.probeMs = Number(value)
    else throw new Error(`unknown option ${String(flag)} (see the top of scripts/simulate-gossip.ts)`)
    i++
  }
  if (options.nodes.some(n => !Number.isInteger(n) || n < 3) || !(options.degree >= 2) || !(options.periods >= 1)) throw new Error('--nodes are integers ≥ 3, --degree ≥ 2, --periods ≥ 1')
  return options
}

/** Wire sizes of one refresh and one full status inside a batch, from real encoded messages. */
export interface WireSizes {
  refresh: number
  full: number
  /** A digest's bytes per node it names (status-digest.ts), from a real one of 1,000 nodes. */
  digestPerNode: number
}

export async function wireSizes (): Promise<WireSizes> {
  const key = await createPeerKey()
  const id = (n: number): string => n.toString(16).padStart(64, '0')
  const body = encodeStatusBody({
    version: '0.11.0', labels: { os: 'linux', arch: 'amd64', site: 'store-1234', tier: 'edge' },
    complete: Array.from({ length: 10 }, (_, i) => id(i + 1)), completeCount: 10, partial: [{ id: id(99), permille: 420 }], partialCount: 1,
    freeBytes: 123e9, uploadRate: 1.5e6, downloadRate: 2.5e6, intervalMs: 3_600_000,
  })
  const signed = await signStatus(key, body, Date.now())
  const empty = StatusBatch.encode({ statuses: [], refreshes: [] }).byteLength
  const refresh = StatusBatch.encode({ statuses: [], refreshes: [{ publisherTail: new Uint8Array(8), sequence: BigInt(Date.now()), signature: signed.signature, ageMs: 123_456 }] }).byteLength - empty
  const full = StatusBatch.encode({ statuses: [{ stamp: signed.stamp, signature: signed.signature, body, ageMs: 123_456 }], refreshes: [] }).byteLength - empty
  const held = Array.from({ length: 1000 }, (_, i) => ({ publisherKey: Uint8Array.from(randomBytes(36)), bodyHash: randomBytes(32).toString('hex'), sequence: Date.now() - i * 997 }))
  const digest = StatusBatch.encode({ digest: encodeDigest(held as HeldStatus[]) }).byteLength
  return { refresh, full: full + encodeVarint(full).byteLength - 1, digestPerNode: digest / held.length }
}

export interface SizeResult {
  nodes: number
  periodS: number
  recvBytesPerS: { mean: number, max: number }
  sentBytesPerS: { mean: number, max: number }
  framedRecvBytesPerS: { mean: number, max: number }
  reachMean: number
  reachMin: number
  falseStalePairs: number
  staleAfterS: number
  joinBytes: number
  wallS: number
  absence?: AbsenceResult
}

export interface AbsenceResult {
  departures: number
  staleAfterS: Spread
  coverageMin: number
  noticesSignedMean: number
  bytesPerNodePerDeparture: number
  /** Notice bytes per node per second at `churn` departures per node per day. */
  churnBytesPerS: number
  refutedAfterS: Spread
  falseStaleShare: number
  refutationBytesPerNode: number
}

export function run (nodes: number, options: Options, sizes: WireSizes): SizeResult {
  const started = performance.now()
  const random = seededRandom(options.seed)
  const topology = buildTopology(nodes, options.degree, options.degree, random)
  const neighbours = topology.neighbours
  const periodMs = statusIntervalMs(nodes)
  const windowMs = statusFlushDelayMs(periodMs)
  // heard[observer * nodes + publisher]: the last round the observer heard the publisher in.
  const heard = new Int32Array(nodes * nodes)
  // bodyHeld[observer * nodes + publisher]: the body version the observer holds.
  const bodyHeld = new Uint16Array(nodes * nodes)
  const body = new Uint16Array(nodes)
  const missed = new Uint8Array(nodes * nodes)
  const recv = new Float64Array(nodes)
  const sent = new Float64Array(nodes)
  // Deliveries per directed link (sender's neighbour slot), for the stream count.
  const offsets = new Int32Array(nodes + 1)
  for (let i = 0; i < nodes; i++) offsets[i + 1] = (offsets[i] ?? 0) + (neighbours[i]?.length ?? 0)
  const linkDeliveries = new Float64Array(offsets[nodes] ?? 0)
  const slotOf = (from: number, to: number): number => (offsets[from] ?? 0) + (neighbours[from]?.indexOf(to) ?? 0)
  let reachSum = 0
  let reachMin = 1
  let heartbeats = 0
  let falseStale = 0
  const queue = new Int32Array(nodes * (statusLimits.STATUS_FANOUT + 1) * 2)
  for (let round = 1; round <= options.periods; round++) {
    for (let p = 0; p < nodes; p++) {
      if (random() < options.change) body[p] = ((body[p] ?? 0) + 1) & 0xffff
      heard[p * nodes + p] = round
      bodyHeld[p * nodes + p] = body[p] ?? 0
      // A push from p: (receiver, sender) pairs, breadth first.
      let head = 0
      let tail = 0
      const push = (from: number, except: number): void => {
        const list = neighbours[from] ?? []
        for (const to of pickTargets(list.filter(n => n !== except), statusLimits.STATUS_FANOUT, random)) {
          queue[tail++] = to
          queue[tail++] = from
        }
      }
      // A publisher sends its own heartbeat to every neighbour (relays use the fanout), so the
      // neighbours that may later witness its absence hold its latest sequence.
      for (const to of neighbours[p] ?? []) {
        queue[tail++] = to
        queue[tail++] = p
      }
      let reached = 1
      while (head < tail) {
        const to = queue[head++] ?? 0
        const from = queue[head++] ?? 0
        const cell = to * nodes + p
        const bytes = bodyHeld[cell] === body[p] ? sizes.refresh : sizes.full
        recv[to] = (recv[to] ?? 0) + bytes
        sent[from] = (sent[from] ?? 0) + bytes
        linkDeliveries[slotOf(from, to)] = (linkDeliveries[slotOf(from, to)] ?? 0) + 1
        if ((heard[cell] ?? 0) >= round) continue
        heard[cell] = round
        bodyHeld[cell] = body[p] ?? 0
        reached++
        push(to, from)
      }
      const share = reached / nodes
      reachSum += share
      reachMin = Math.min(reachMin, share)
      heartbeats++
    }
    // Who missed a publisher's heartbeat this round, and for how many rounds in a row.
    for (let cell = 0; cell < heard.length; cell++) {
      if ((heard[cell] ?? 0) === round) missed[cell] = 0
      else if (++(missed[cell] as number) >= statusLimits.STALE_AFTER_INTERVALS) falseStale++
    }
  }
  const seconds = options.periods * periodMs / 1000
  const windows = seconds * 1000 / windowMs
  const framed = new Float64Array(nodes)
  for (let from = 0; from < nodes; from++) {
    const list = neighbours[from] ?? []
    for (let k = 0; k < list.length; k++) {
      const to = list[k] ?? 0
      const deliveries = linkDeliveries[(offsets[from] ?? 0) + k] ?? 0
      // Expected windows with at least one delivery on this link.
      const streams = windows * (1 - Math.exp(-deliveries / windows))
      framed[to] = (framed[to] ?? 0) + streams * statusLimits.STATUS_STREAM_OVERHEAD_BYTES
    }
  }
  const stats = (values: Float64Array, extra?: Float64Array): { mean: number, max: number } => {
    let total = 0
    let max = 0
    for (let i = 0; i < values.length; i++) {
      const v = ((values[i] ?? 0) + (extra?.[i] ?? 0)) / seconds
      total += v
      max = Math.max(max, v)
    }
    return { mean: total / values.length, max }
  }
  return {
    nodes,
    periodS: periodMs / 1000,
    recvBytesPerS: stats(recv),
    sentBytesPerS: stats(sent),
    framedRecvBytesPerS: stats(recv, framed),
    reachMean: reachSum / heartbeats,
    reachMin,
    falseStalePairs: falseStale,
    staleAfterS: statusLimits.STALE_AFTER_INTERVALS * periodMs / 1000,
    // A joining node takes the whole view from its first neighbour, then each neighbour's digest
    // (and the little each answer adds, not counted); it sends as many digests of its own.
    joinBytes: nodes * sizes.full + topology.meanDegree * nodes * sizes.digestPerNode,
    wallS: (performance.now() - started) / 1000,
    ...(options.departures !== undefined && options.departures > 0 ? { absence: absence(neighbours, periodMs, options, sizes, random) } : {}),
  }
}

/** Sample departures and as many dropped connections between live nodes (gossip-absence.ts). */
function absence (neighbours: number[][], periodMs: number, options: Options, sizes: { refresh: number }, random: () => number): AbsenceResult {
  const nodes = neighbours.length
  const absenceOptions = { baseIntervalMs: statusLimits.DEFAULT_STATUS_INTERVAL_MS, hopLatencyMs: 50, probeMs: options.probeMs ?? 10 }
  const departures = options.departures ?? 0
  const stale: number[] = []
  const refuted: number[] = []
  let coverageMin = 1
  let signed = 0
  let bytes = 0
  let falseStale = 0
  let refutationBytes = 0
  for (let d = 0; d < departures; d++) {
    const subject = 1 + Math.floor(random() * (nodes - 1))
    const r = simulateDeparture(neighbours, subject, absenceOptions, random)
    stale.push(r.staleAfterS.median, r.staleAfterS.p99, r.staleAfterS.max)
    coverageMin = Math.min(coverageMin, r.coverage)
    signed += r.noticesSigned
    bytes += r.bytesPerNode
    const list = neighbours[subject] ?? []
    const witness = list[Math.floor(random() * list.length)] ?? 0
    const f = simulateRefutation(neighbours, subject, witness, periodMs, sizes.refresh, absenceOptions, random)
    refuted.push(f.refutedAfterS.median, f.refutedAfterS.p99, f.refutedAfterS.max)
    falseStale += f.falseStaleShare
    refutationBytes += f.bytesPerNode
  }
  const perDeparture = bytes / departures
  const churnPerSecond = (options.churn ?? 0) * nodes / 86_400
  // Medians of the per-departure medians; the worst p99 and max.
  const third = (values: number[], k: number): number[] => values.filter((_, i) => i % 3 === k).sort((a, b) => a - b)
  const summary = (values: number[]): Spread => ({
    median: third(values, 0)[Math.floor(departures / 2)] ?? NaN,
    p99: Math.max(...third(values, 1)),
    max: Math.max(...third(values, 2)),
  })
  return {
    departures,
    staleAfterS: summary(stale),
    coverageMin,
    noticesSignedMean: signed / departures,
    bytesPerNodePerDeparture: perDeparture,
    churnBytesPerS: perDeparture * churnPerSecond,
    refutedAfterS: summary(refuted),
    falseStaleShare: falseStale / departures,
    refutationBytesPerNode: refutationBytes / departures,
  }
}

export async function main (argv: string[]): Promise<number> {
  const options = parseArgs(argv)
  const sizes = await wireSizes()
  const budget = 1024
  process.stdout.write(`status gossip: fanout ${statusLimits.STATUS_FANOUT}, degree ${options.degree}, ${options.periods} periods, body change ${options.change} per heartbeat, seed ${options.seed}\n`)
  process.stdout.write(`wire sizes: refresh ${sizes.refresh} B, full status ${sizes.full} B (10 bundles, 1 arriving, 4 labels), digest ${sizes.digestPerNode.toFixed(1)} B per node named; stream framing ~${statusLimits.STATUS_STREAM_OVERHEAD_BYTES} B (estimate)\n\n`)
  process.stdout.write('nodes  period   recv B/s mean/max  sent B/s mean/max  +framing recv mean/max  reach mean/min   false-stale pairs  stale after  join (one-off)  sim s\n')
  let ok = true
  const results: SizeResult[] = []
  for (const n of options.nodes) {
    const r = run(n, options, sizes)
    results.push(r)
    const fmt = (x: { mean: number, max: number }): string => `${x.mean.toFixed(0).padStart(5)} / ${x.max.toFixed(0).padStart(5)}`
    process.stdout.write(`${String(n).padStart(5)}  ${(r.periodS / 60).toFixed(1).padStart(5)} min  ${fmt(r.recvBytesPerS)}       ${fmt(r.sentBytesPerS)}       ${fmt(r.framedRecvBytesPerS)}           ${r.reachMean.toFixed(4)} / ${r.reachMin.toFixed(3)}   ${String(r.falseStalePairs).padStart(10)}         ${(r.staleAfterS / 60).toFixed(0).padStart(4)} min  ${(r.joinBytes / 1024 / 1024).toFixed(1).padStart(7)} MiB   ${r.wallS.toFixed(1)}\n`)
    if (r.framedRecvBytesPerS.mean > budget || r.sentBytesPerS.mean > budget) ok = false
  }
  const withAbsence = results.filter(r => r.absence !== undefined)
  if (withAbsence.length > 0) {
    process.stdout.write(`\nabsence notices: ${options.departures ?? 0} departures per size (a witness's dial fails after ${options.probeMs ?? 10} ms), configured period ${statusLimits.DEFAULT_STATUS_INTERVAL_MS / 1000} s, churn ${options.churn ?? 0} departures per node per day\n`)
    process.stdout.write('nodes  stale after s (median / p99 / max)  reached min  notices  B/node/departure  churn B/s  | dropped link: refuted after s (median / p99 / max)  marked stale first  B/node\n')
    for (const r of withAbsence) {
      const a = r.absence as AbsenceResult
      const sp = (x: Spread): string => `${x.median.toFixed(1)} / ${x.p99.toFixed(1)} / ${x.max.toFixed(1)}`
      process.stdout.write(`${String(r.nodes).padStart(5)}  ${sp(a.staleAfterS).padStart(22)}              ${a.coverageMin.toFixed(4)}   ${a.noticesSignedMean.toFixed(1).padStart(5)}   ${a.bytesPerNodePerDeparture.toFixed(0).padStart(10)}       ${a.churnBytesPerS.toFixed(1).padStart(6)}  | ${sp(a.refutedAfterS).padStart(22)}                        ${(a.falseStaleShare * 100).toFixed(2).padStart(6)}%        ${a.refutationBytesPerNode.toFixed(0)}\n`)
      if (r.framedRecvBytesPerS.mean + a.churnBytesPerS > budget) ok = false
    }
  }
  process.stdout.write(`\ngoal: ≤ 1 KiB/s per node at steady state (mean, framing and churn's notices included): ${ok ? 'met' : 'NOT met'}\n`)
  return ok ? 0 : 1
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  main(process.argv.slice(2)).then(code => { process.exitCode = code }, (err: unknown) => {
    process.stderr.write(`simulate-gossip: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 2
  })
}
