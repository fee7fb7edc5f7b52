// Command-line options of scripts/simulate.ts. Quantities use the fleet bed's units
// (scripts/fleet/units.ts), so a simulated run and a bed run are spelled the same way.
import { parseArgs } from 'node:util'
import { parseDurationMs, parseRateBitsPerSecond, parseSizeBytes } from '../fleet/units.js'
import type { ServeOrder, SimConfig } from './swarm-sim.js'

export const USAGE = `usage: node --import tsx scripts/simulate.ts [options]

A discrete-event simulation of one bundle spreading from a gateway to N-1 edges, every
edge running the daemon's Scheduler (src/swarm) over simulated links.

  --nodes LIST           swarm sizes, gateway included (default 10,100,1000,5000)
  --size SIZE            bundle size (default 64MiB)
  --objects N            objects in the bundle, about equal in size (default 4)
  --rate RATE            every uplink and downlink (default 20mbit)
  --delay DURATION       one-way latency of every link (default 10ms)
  --neighbours K         neighbours per node, capped at N-1 (default 20)
  --gateway-neighbours K neighbours of the gateway (default: --neighbours)
  --store-ms MS          verify-and-store time per chunk (default 0)
  --seed N               seed of the topology and every node's random order (default 1)
  --runs R               runs per size, seeds N…N+R-1; medians are reported (default 1)
  --out DIR              write DIR/results.json and DIR/plot.svg
  --timeline DURATION    print, per run, the swarm every DURATION of simulated time: chunks the
                         gateway seeded, chunks the edges hold, busy links, idle holders of
                         chunks a neighbour lacks, queued requests (where a pull's time goes)
What-ifs (the defaults are what the daemon does):
  --serve ORDER          how chunk servers order requests: daemon (streams take turns, each
                         answered rarest first), edge-fifo (edges answer a stream in arrival
                         order: the daemon before 2026-12-05), node-rarest (one queue per node,
                         rarest first), gateway-node-rarest (only the gateway uses one queue)
  --no-defer-at-send     the gateway defers only when a request arrives, not again when a
                         queued request comes up to be sent (the daemon before 2026-11-25)
  --deferrals N          times the gateway defers one asker for one chunk (default: the
                         daemon's, GATEWAY_SEEDING_POLICY in src/swarm/gateway-seeding.ts)
  --keep-deferring       the gateway keeps deferring even once another of its neighbours
                         advertises the chunk
  --serve-advertised     the gateway serves a deferred asker once another of its neighbours
                         advertises the chunk (it may not reach that copy)
  --deferral-budget N    DEFERRED answers the gateway gives one asker, all chunks, decayed with
                         a 30 s half-life as the asker's peer score decays them ('none': no
                         budget; default: the daemon's, GATEWAY_SEEDING_POLICY)
  --second-copy-wait MS  a second copy of a chunk waits at the gateway while another asker has a
                         never-sent chunk queued, for at most MS after it was asked (default:
                         the daemon's, GATEWAY_SEEDING_POLICY)
  --sole-copy-hold MS    an edge's stream whose next chunk another edge neighbour holds too waits
                         while another stream has a chunk only this edge holds, for at most MS
                         after it was asked (default: the daemon's, SOLE_COPY_HOLD_MS; 0 off)
  --scheduler JSON       SchedulerInit overrides for every edge, e.g. '{"gatewayDeferMs":3000}'
  --help
`

export class UsageError extends Error {
  override name = 'UsageError'
}

export interface SimulateOptions {
  sizes: number[]
  runs: number
  out: string | undefined
  /** Everything of a SimConfig but the node count. */
  base: Omit<SimConfig, 'nodes'>
}

export type Parsed = { kind: 'help' } | { kind: 'run', options: SimulateOptions }

const SERVE_ORDERS: readonly ServeOrder[] = ['daemon', 'edge-fifo', 'node-rarest', 'gateway-node-rarest']

export function parseSimulateArgs (argv: string[]): Parsed {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        nodes: { type: 'string', default: '10,100,1000,5000' },
        size: { type: 'string', default: '64MiB' },
        objects: { type: 'string', default: '4' },
        rate: { type: 'string', default: '20mbit' },
        delay: { type: 'string', default: '10ms' },
        neighbours: { type: 'string', default: '20' },
        'gateway-neighbours': { type: 'string' },
        'store-ms': { type: 'string', default: '0' },
        seed: { type: 'string', default: '1' },
        runs: { type: 'string', default: '1' },
        out: { type: 'string' },
        timeline: { type: 'string' },
        serve: { type: 'string', default: 'daemon' },
        'no-defer-at-send': { type: 'boolean', default: false },
        deferrals: { type: 'string' },
        'keep-deferring': { type: 'boolean', default: false },
        'serve-advertised': { type: 'boolean', default: false },
        'deferral-budget': { type: 'string' },
        'second-copy-wait': { type: 'string' },
        'sole-copy-hold': { type: 'string' },
        scheduler: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }))
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (values.help) return { kind: 'help' }
  const quantity = <T>(name: string, parse: () => T): T => {
    try {
      return parse()
    } catch (err) {
      throw new UsageError(`--${name}: ${(err as Error).message}`)
    }
  }
  const sizes = quantity('nodes', () => values.nodes.split(',').map(s => integer(s.trim(), 2)))
  const serve = values.serve as ServeOrder
  if (!SERVE_ORDERS.includes(serve)) throw new UsageError(`--serve: one of ${SERVE_ORDERS.join(', ')}`)
  let scheduler: SimConfig['scheduler']
  if (values.scheduler !== undefined) {
    scheduler = quantity('scheduler', () => {
      const parsed: unknown = JSON.parse(values.scheduler as string)
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new RangeError('a JSON object of SchedulerInit fields')
      return parsed as SimConfig['scheduler']
    })
  }
  const gatewayNeighbours = values['gateway-neighbours']
  const deferrals = values.deferrals
  const budget = values['deferral-budget']
  const secondCopyWait = values['second-copy-wait']
  const soleCopyHold = values['sole-copy-hold']
  if (values['keep-deferring'] && values['serve-advertised']) throw new UsageError('--keep-deferring and --serve-advertised contradict each other')
  return {
    kind: 'run',
    options: {
      sizes,
      runs: quantity('runs', () => integer(values.runs, 1)),
      out: values.out,
      base: {
        bundleBytes: quantity('size', () => parseSizeBytes(values.size)),
        objects: quantity('objects', () => integer(values.objects, 1)),
        rateBitsPerSecond: quantity('rate', () => parseRateBitsPerSecond(values.rate)),
        delayMs: quantity('delay', () => parseDurationMs(values.delay)),
        neighbours: quantity('neighbours', () => integer(values.neighbours, 1)),
        gatewayNeighbours: gatewayNeighbours === undefined ? undefined : quantity('gateway-neighbours', () => integer(gatewayNeighbours, 1)),
        storeMs: quantity('store-ms', () => parseDurationMs(values['store-ms'])),
        timelineMs: values.timeline === undefined ? undefined : quantity('timeline', () => parseDurationMs(values.timeline as string)),
        seed: quantity('seed', () => integer(values.seed, 0)),
        serveOrder: serve,
        gatewayDefersAtSend: values['no-defer-at-send'] !== true,
        gatewayDeferralsPerAsker: deferrals === undefined ? undefined : quantity('deferrals', () => integer(deferrals, 0)),
        gatewayServesAdvertised: values['keep-deferring'] ? false : values['serve-advertised'] ? true : undefined,
        gatewayDeferralBudget: budget === undefined ? undefined : budget === 'none' ? Infinity : quantity('deferral-budget', () => integer(budget, 0)),
        gatewaySecondCopyWaitMs: secondCopyWait === undefined ? undefined : quantity('second-copy-wait', () => parseDurationMs(secondCopyWait)),
        soleCopyHoldMs: soleCopyHold === undefined ? undefined : quantity('sole-copy-hold', () => parseDurationMs(soleCopyHold)),
        scheduler,
      },
    },
  }
}

function integer (text: string, min: number): number {
  if (!/^\d+$/.test(text)) throw new RangeError(`${JSON.stringify(text)} is not a whole number`)
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${text} is below ${min}`)
  return value
}
