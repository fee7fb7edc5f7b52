// Command-line options of scripts/fleet.ts.
import type { FaultKind, Mode } from './results.js'
import { parseDurationMs, parseEnvAssignment, parseLossPercent, parseRateBitsPerSecond, parseSizeBytes } from './units.js'

export interface FleetOptions {
  /** Hosts, gateway included (the byzantine fault adds one more). */
  nodes: number
  rateBitsPerSecond: number
  delayMs: number
  lossPercent: number
  sizeBytes: number
  bundle: string | undefined
  mode: Mode
  faults: FaultKind
  outDir: string | undefined
  timeoutSeconds: number
  /** Keep the nodes' data directories (the test reads the pulled layouts). */
  keepData: boolean
  workDir: string | undefined
  mdns: boolean
  /** Copies of results and progress lines on stderr. */
  quiet: boolean
  /** shoal mode: each daemon writes a V8 CPU profile (`node --cpu-prof`) under DIR/<node>/. */
  cpuProfDir: string | undefined
  /** shoal mode: seconds every daemon sits idle (all up, bundle pushed) before the pulls, its CPU measured. */
  idleSeconds: number
  /**
   * shoal mode, an A/B test inside one run: every second edge (n2, n4, …: group B) starts with
   * these node flags (replacing a shipped flag of the same name) and environment. A change
   * measured against the edges beside it, in the same window, is far less at the mercy of the
   * machine's load than one measured against another run.
   */
  bNodeFlags: string[]
  bEnv: Record<string, string>
}

export const DEFAULT_OPTIONS: FleetOptions = {
  nodes: 4,
  rateBitsPerSecond: 20e6,
  delayMs: 10,
  lossPercent: 0,
  sizeBytes: 64 * 1024 * 1024,
  bundle: undefined,
  mode: 'shoal',
  faults: 'none',
  outDir: undefined,
  timeoutSeconds: 600,
  keepData: false,
  workDir: undefined,
  mdns: true,
  quiet: false,
  cpuProfDir: undefined,
  idleSeconds: 0,
  bNodeFlags: [],
  bEnv: {},
}

export const USAGE = `usage: node --import tsx scripts/fleet.ts [options]     (as root)
       node --import tsx scripts/fleet.ts --cleanup [PREFIX]

A fleet of network namespaces on one bridge, shaped links, one gateway and N-1 edges
pulling one image at the same moment; results.json, plot.svg and logs in --out.

  --nodes N          hosts, gateway included (default 4)
  --rate R           per-host link rate, both directions, tc units (default 20mbit; 0 = unshaped)
  --delay D          one-way latency between any two hosts (default 10ms; 0 = none)
  --loss P           percent of packets dropped on the bridge (default 0)
  --size S           size of the generated image's base layer (default 64MiB)
  --bundle PATH      use this OCI layout directory, oci-archive or docker-archive instead
  --mode M           shoal | registry | bittorrent (default shoal); bittorrent is the
                     peer-to-peer baseline: opentracker and aria2c (apt-get install
                     aria2 opentracker), 1 MiB pieces, the gateway seeds, every edge
                     leeches and seeds on
  --faults F         none | kill | byzantine | partition (default none)
  --out DIR          where results go (default ./fleet-out/<timestamp>)
  --timeout S        seconds the pulls may take (default 600)
  --keep-data        keep every node's data directory (under the work dir)
  --work-dir DIR     where node data goes (default $TMPDIR/shoal-fleet/<run id>)
  --no-mdns          shoal mode: start daemons with --no-mdns (bootstrap and DHT only)
  --quiet            no progress lines on stderr
  --cpu-prof DIR     shoal mode: every daemon writes a V8 CPU profile into DIR/<node>/
                     when it stops (split by phase: scripts/fleet-profile.ts)
  --idle-seconds S   shoal mode: let every daemon idle S seconds before the pulls and
                     report each one's idle CPU (timers, gossip, discovery) (default 0)
  --b-node-flag F    shoal mode: every second edge (n2, n4, …: group B) runs node with
                     flag F (repeatable; replaces the shipped flag of the same name);
                     the summary compares group B with group A in the same run
  --b-env NAME=VALUE shoal mode: the same for an environment variable (repeatable)
  --cleanup [PREFIX] remove namespaces, processes and work dirs left by earlier runs
                     whose runner is gone (PREFIX defaults to every fleet run);
                     with --force, also those of runs still going
`

export type ParsedArgs =
  | { kind: 'run', options: FleetOptions }
  | { kind: 'cleanup', prefix: string | undefined, force: boolean }
  | { kind: 'help' }

export function parseFleetArgs (argv: string[]): ParsedArgs {
  const options: FleetOptions = { ...DEFAULT_OPTIONS }
  let cleanup = false
  let cleanupPrefix: string | undefined
  let force = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    const value = (): string => {
      const v = inline ?? argv[++i]
      if (v === undefined) throw new UsageError(`${flag} needs a value`)
      return v
    }
    switch (flag) {
      case '--help': case '-h': return { kind: 'help' }
      case '--nodes': {
        const n = Number(value())
        if (!Number.isInteger(n) || n < 2 || n > 250) throw new UsageError('--nodes must be an integer from 2 to 250')
        options.nodes = n
        break
      }
      case '--rate': options.rateBitsPerSecond = wrap(() => parseRateBitsPerSecond(value())); break
      case '--delay': options.delayMs = wrap(() => parseDurationMs(value())); break
      case '--loss': options.lossPercent = wrap(() => parseLossPercent(value())); break
      case '--size': options.sizeBytes = wrap(() => parseSizeBytes(value())); break
      case '--bundle': options.bundle = value(); break
      case '--mode': {
        const mode = value()
        if (mode !== 'shoal' && mode !== 'registry' && mode !== 'bittorrent') throw new UsageError('--mode is shoal, registry or bittorrent')
        options.mode = mode
        break
      }
      case '--faults': {
        const faults = value()
        if (!['none', 'kill', 'byzantine', 'partition'].includes(faults)) throw new UsageError('--faults is none, kill, byzantine or partition')
        options.faults = faults as FaultKind
        break
      }
      case '--out': options.outDir = value(); break
      case '--timeout': {
        const seconds = Number(value())
        if (!(seconds > 0)) throw new UsageError('--timeout is a positive number of seconds')
        options.timeoutSeconds = seconds
        break
      }
      case '--keep-data': options.keepData = true; break
      case '--work-dir': options.workDir = value(); break
      case '--no-mdns': options.mdns = false; break
      case '--quiet': options.quiet = true; break
      case '--cpu-prof': options.cpuProfDir = value(); break
      case '--idle-seconds': {
        const seconds = Number(value())
        if (!(seconds >= 0 && seconds <= 3600)) throw new UsageError('--idle-seconds is a number of seconds from 0 to 3600')
        options.idleSeconds = seconds
        break
      }
      case '--b-node-flag': {
        const flag = value()
        if (!/^--[a-z0-9-]+(=\S+)?$/i.test(flag)) throw new UsageError(`--b-node-flag takes one node flag like --max-semi-space-size=16, not ${flag}`)
        options.bNodeFlags.push(flag)
        break
      }
      case '--b-env': {
        const [name, setting] = wrap(() => parseEnvAssignment(value()))
        options.bEnv[name] = setting
        break
      }
      case '--force': force = true; break
      case '--cleanup':
        cleanup = true
        if (inline !== undefined) cleanupPrefix = inline
        else if (argv[i + 1] !== undefined && !(argv[i + 1] ?? '').startsWith('--')) cleanupPrefix = argv[++i]
        break
      default: throw new UsageError(`unknown option ${arg}`)
    }
  }
  if (cleanup) return { kind: 'cleanup', prefix: cleanupPrefix, force }
  if (options.mode === 'registry' && options.faults === 'byzantine') {
    throw new UsageError('--faults byzantine needs --mode shoal: a registry client has no peers to be lied to by')
  }
  if (options.mode !== 'shoal' && (options.cpuProfDir !== undefined || options.idleSeconds > 0 || abTest(options))) {
    throw new UsageError('--cpu-prof, --idle-seconds, --b-node-flag and --b-env need --mode shoal: they measure the daemons')
  }
  if (abTest(options) && options.nodes < 5) throw new UsageError('an A/B run needs at least two edges in each group: --nodes 5 or more')
  if (options.mode === 'bittorrent' && options.faults !== 'none') {
    throw new UsageError('--mode bittorrent runs without faults: it is the baseline for a clean transfer')
  }
  return { kind: 'run', options }
}

/** Whether the run compares two groups of edges (--b-node-flag, --b-env). */
export function abTest (options: FleetOptions): boolean {
  return options.bNodeFlags.length > 0 || Object.keys(options.bEnv).length > 0
}

/** Which group an edge is in for an A/B run: n2, n4, … are B. */
export function edgeGroup (edgeNumber: number): 'A' | 'B' {
  return edgeNumber % 2 === 0 ? 'B' : 'A'
}

/** The shipped node flags with group B's put in: a flag of the same name is replaced. */
export function withFlags (shipped: string[], extra: string[]): string[] {
  const name = (flag: string): string => flag.split('=', 1)[0] ?? flag
  const replaced = new Set(extra.map(name))
  return [...shipped.filter(flag => !replaced.has(name(flag))), ...extra]
}

export class UsageError extends Error {
  override name = 'UsageError'
}

function wrap<T> (parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}
