// The test bed: one network namespace per host, all on one bridge that lives in a
// namespace of its own (the "switch"), so nothing of a run touches the machine's own
// namespace: its routes, its iptables and its interfaces stay as they were, and
// deleting the run's namespaces removes every link, qdisc and rule it made.
//
//   host ns <run>-n<i>: <run>h<i> (10.213.x.(i+1)/24)
//        │ veth, shaped on both ends (tbf): host side = upload, switch side = download
//   switch ns <run>-sw: <run>p<i> ─ bridge <run>br ─ FORWARD: [loss DROP] → [NFQUEUE → nfq-delay]
//
// Delay and loss sit on the bridge's FORWARD path (br_netfilter), so a packet between
// two hosts is delayed once and dropped at most once: `--delay 10ms` is the one-way
// latency between any two hosts, 20 ms round trip.
import { startDelayProgram } from './delay.js'
import { inNetns, run, type Service, type Services } from './proc.js'

export interface BedInit {
  runId: string
  /** Every host, gateway first. */
  hostCount: number
  rateBitsPerSecond: number
  delayMs: number
  lossPercent: number
  /** First three octets of the /24 the hosts get; chosen by pickSubnet when absent. */
  subnet?: string
  cacheDir: string
  /** The delay program's stderr (its counters) goes here. */
  delayLogFile?: string
  services: Services
}

export interface Host {
  index: number
  ns: string
  ip: string
  /** The host's end of its veth, inside its namespace. */
  ifname: string
  /** The switch's end of the same veth, a bridge port inside the switch namespace. */
  port: string
}

export interface LinkCounters {
  rxBytes: number
  txBytes: number
  /**
   * The host's TCP counters (its namespace's /proc/net/snmp and netstat): segments it sent
   * again, and segments it received that it already had (answered with a D-SACK, RFC 2883).
   * A segment received twice crosses the link twice and counts in rxBytes twice, though no
   * application byte came twice. Undefined where the kernel does not say.
   */
  tcp?: { retransmittedSegments: number, duplicateSegmentsReceived: number }
}

// The kernel's limit for interface names is 15 bytes (IFNAMSIZ - 1).
const MAX_IFNAME = 15
const DELAY_QUEUE = 0

export class Bed {
  readonly runId: string
  readonly switchNs: string
  readonly bridge: string
  readonly hosts: Host[] = []
  subnet = ''
  private readonly created = new Set<string>()
  private delay: Service | undefined

  constructor (private readonly init: BedInit) {
    this.runId = init.runId
    this.switchNs = `${init.runId}-sw`
    this.bridge = `${init.runId}br`
    if (init.hostCount < 2 || init.hostCount > 250) throw new RangeError(`a bed has 2 to 250 hosts, not ${init.hostCount}`)
    if (`${init.runId}h${init.hostCount}`.length > MAX_IFNAME) throw new RangeError(`run id ${init.runId} is too long for interface names`)
  }

  /** Every namespace this bed may have created, for teardown and leftover checks. */
  get namespaces (): string[] {
    return [this.switchNs, ...Array.from({ length: this.init.hostCount }, (_, i) => `${this.runId}-n${i}`)]
  }

  async up (signal?: AbortSignal): Promise<void> {
    const { runId, hostCount } = this.init
    this.subnet = this.init.subnet ?? await pickSubnet()
    await this.addNetns(this.switchNs, signal)
    const sw = (args: string[]): Promise<unknown> => run(['ip', '-n', this.switchNs, ...args], { signal })
    await sw(['link', 'add', this.bridge, 'type', 'bridge'])
    await sw(['link', 'set', this.bridge, 'up'])

    for (let i = 0; i < hostCount; i++) {
      this.hosts.push({ index: i, ns: `${runId}-n${i}`, ip: `${this.subnet}.${i + 1}`, ifname: `${runId}h${i}`, port: `${runId}p${i}` })
    }
    // Hosts are independent of each other: set them up in parallel, it is most of the bed's start time.
    await Promise.all(this.hosts.map(async host => { await this.addHost(host, signal) }))
    await this.addImpairments(signal)
  }

  private async addNetns (ns: string, signal?: AbortSignal): Promise<void> {
    // Recorded before the command: a half-made namespace must still be torn down.
    this.created.add(ns)
    await run(['ip', 'netns', 'add', ns], { signal })
    await run(inNetns(ns, ['sysctl', '-q', '-w',
      // IPv6 would add router solicitations, MLD and DAD to the byte counters; the fleet is IPv4 only.
      'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']), { signal })
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up'], { signal })
  }

  private async addHost (host: Host, signal?: AbortSignal): Promise<void> {
    await this.addNetns(host.ns, signal)
    const inHost = (args: string[]): Promise<unknown> => run(['ip', '-n', host.ns, ...args], { signal })
    const inSwitch = (args: string[]): Promise<unknown> => run(['ip', '-n', this.switchNs, ...args], { signal })
    // Created straight into both namespaces: the pair never appears in the machine's own namespace.
    await inHost(['link', 'add', host.ifname, 'type', 'veth', 'peer', 'name', host.port, 'netns', this.switchNs])
    await inSwitch(['link', 'set', host.port, 'master', this.bridge])
    await inSwitch(['link', 'set', host.port, 'up'])
    await inHost(['addr', 'add', `${host.ip}/24`, 'dev', host.ifname])
    await inHost(['link', 'set', host.ifname, 'up'])
    // A LAN host has a route for multicast (mDNS sends to 224.0.0.251); without a default
    // route the kernel would answer "network unreachable". No default route: nothing leaves the bed.
    await inHost(['route', 'add', '224.0.0.0/4', 'dev', host.ifname])
    if (this.init.rateBitsPerSecond > 0) {
      await shape(host.ns, host.ifname, this.init.rateBitsPerSecond, signal)
      await shape(this.switchNs, host.port, this.init.rateBitsPerSecond, signal)
    }
  }

  private async addImpairments (signal?: AbortSignal): Promise<void> {
    const { delayMs, lossPercent, runId } = this.init
    const needFilter = delayMs > 0 || lossPercent > 0
    await run(inNetns(this.switchNs, ['sysctl', '-q', '-w', `net.bridge.bridge-nf-call-iptables=${needFilter ? 1 : 0}`]), { signal })
    if (!needFilter) return
    const iptables = (args: string[]): Promise<unknown> => run(inNetns(this.switchNs, ['iptables', '-w', ...args]), { signal })
    if (lossPercent > 0) {
      await iptables(['-A', 'FORWARD', '-m', 'comment', '--comment', runId,
        '-m', 'statistic', '--mode', 'random', '--probability', String(lossPercent / 100), '-j', 'DROP'])
    }
    if (delayMs > 0) {
      // The program must listen before the rule exists: an unbound queue drops every packet.
      this.delay = await startDelayProgram({
        services: this.init.services, ns: this.switchNs, queue: DELAY_QUEUE, delayMs, cacheDir: this.init.cacheDir, logFile: this.init.delayLogFile, signal,
      })
      await iptables(['-A', 'FORWARD', '-m', 'comment', '--comment', runId, '-j', 'NFQUEUE', '--queue-num', String(DELAY_QUEUE)])
    }
  }

  /** Byte counters of a host's link as the host sees them (tx = what it uploaded). */
  async counters (host: Host, signal?: AbortSignal): Promise<LinkCounters> {
    const { stdout } = await run(['ip', '-n', host.ns, '-j', '-s', 'link', 'show', 'dev', host.ifname], { signal })
    const [link] = JSON.parse(stdout) as Array<{ stats64?: { rx?: { bytes?: number }, tx?: { bytes?: number } } }>
    const rxBytes = link?.stats64?.rx?.bytes
    const txBytes = link?.stats64?.tx?.bytes
    if (rxBytes === undefined || txBytes === undefined) throw new Error(`no counters for ${host.ifname} in ${host.ns}`)
    const tcp = await run(inNetns(host.ns, ['cat', '/proc/net/snmp', '/proc/net/netstat']), { signal }).then(r => tcpCounters(r.stdout), () => undefined)
    return { rxBytes, txBytes, ...(tcp !== undefined ? { tcp } : {}) }
  }

  /** Takes a host's switch port down or up: to the host it looks like a pulled cable. */
  async setLink (host: Host, up: boolean, signal?: AbortSignal): Promise<void> {
    await run(['ip', '-n', this.switchNs, 'link', 'set', host.port, up ? 'up' : 'down'], { signal })
  }

  /**
   * Stops the delay program, kills whatever still runs in the run's namespaces (the
   * caller has already stopped its services politely), and deletes the namespaces,
   * which takes their links, qdiscs and iptables rules with them. Never throws.
   */
  async destroy (): Promise<string[]> {
    const problems: string[] = []
    await this.delay?.stop(2000).catch((err: unknown) => { problems.push(String(err)) })
    for (const ns of [...this.created].reverse()) {
      problems.push(...await removeNetns(ns))
    }
    this.created.clear()
    return problems
  }
}

/** tbf on the egress of one interface (in `ns`, or the machine's own namespace when undefined); burst and queue sized for the rate. */
export async function shape (ns: string | undefined, dev: string, rateBitsPerSecond: number, signal?: AbortSignal): Promise<void> {
  const bytesPerSecond = rateBitsPerSecond / 8
  // A few milliseconds of line rate, but at least a handful of full-size frames.
  const burst = Math.max(16 * 1024, Math.round(bytesPerSecond * 0.004))
  // 50 ms of queue: enough for TCP to keep the link busy, short enough to keep pings honest.
  const tc = ['tc', 'qdisc', 'replace', 'dev', dev, 'root', 'tbf',
    'rate', `${rateBitsPerSecond}bit`, 'burst', String(burst), 'latency', '50ms']
  await run(ns === undefined ? tc : inNetns(ns, tc), { signal })
}

/** Kills every process left in a namespace (by pid, from `ip netns pids`), then deletes it. */
export async function removeNetns (ns: string): Promise<string[]> {
  const problems: string[] = []
  for (let attempt = 0; attempt < 3; attempt++) {
    const pids = await netnsPids(ns)
    if (pids.length === 0) break
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL') } catch { /* gone meanwhile */ }
    }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  const result = await run(['ip', 'netns', 'del', ns], { allowFailure: true })
  if (result.code !== 0 && !/No such file|Cannot remove|does not exist/i.test(result.stderr)) problems.push(`ip netns del ${ns}: ${result.stderr.trim()}`)
  return problems
}

export async function netnsPids (ns: string): Promise<number[]> {
  const result = await run(['ip', 'netns', 'pids', ns], { allowFailure: true })
  if (result.code !== 0) return []
  return result.stdout.split(/\s+/).filter(s => s !== '').map(Number).filter(pid => Number.isSafeInteger(pid) && pid > 1 && pid !== process.pid)
}

/**
 * The first 10.213.x.0/24 … 10.250.x.0/24 that overlaps nothing routed or addressed in
 * the machine's own namespace. The bed is isolated, so a clash could not leak traffic,
 * but a familiar-looking address in a log should never be ambiguous.
 */
export async function pickSubnet (): Promise<string> {
  const { stdout: routes } = await run(['ip', '-4', '-j', 'route', 'show', 'table', 'all'])
  const { stdout: addrs } = await run(['ip', '-4', '-j', 'addr', 'show'])
  const taken: Array<[number, number]> = []
  for (const route of JSON.parse(routes) as Array<{ dst?: string }>) {
    if (route.dst !== undefined && route.dst !== 'default') taken.push(cidrRange(route.dst))
  }
  for (const link of JSON.parse(addrs) as Array<{ addr_info?: Array<{ local?: string, prefixlen?: number }> }>) {
    for (const info of link.addr_info ?? []) {
      if (info.local !== undefined) taken.push(cidrRange(`${info.local}/${info.prefixlen ?? 32}`))
    }
  }
  for (let second = 213; second <= 250; second++) {
    for (let third = 0; third < 256; third++) {
      const [lo, hi] = cidrRange(`10.${second}.${third}.0/24`)
      if (taken.every(([a, b]) => hi < a || lo > b)) return `10.${second}.${third}`
    }
  }
  throw new Error('no free /24 in 10.213.0.0 – 10.250.255.0')
}

function cidrRange (cidr: string): [number, number] {
  const [ip = '', bitsText] = cidr.split('/')
  const bits = bitsText === undefined ? 32 : Number(bitsText)
  const parts = ip.split('.').map(Number)
  while (parts.length < 4) parts.push(0)
  const value = parts.reduce((acc, part) => acc * 256 + part, 0)
  const size = 2 ** (32 - bits)
  const lo = Math.floor(value / size) * size
  return [lo, lo + size - 1]
}

/** True when a TCP connection to ip:port succeeds from inside `ns` (bash's /dev/tcp: no extra tools). */
export async function tcpReachable (ns: string, ip: string, port: number, signal?: AbortSignal): Promise<boolean> {
  const result = await run(inNetns(ns, ['bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`]), { allowFailure: true, signal, timeoutMs: 2000 })
  return result.code === 0
}

/**
 * The counters LinkCounters.tcp names, from /proc/net/snmp and /proc/net/netstat: each
 * protocol there is a line of names and a line of values, both starting `Proto:`.
 */
export function tcpCounters (text: string): LinkCounters['tcp'] {
  const values = new Map<string, number>()
  const lines = text.split('\n')
  for (let i = 0; i + 1 < lines.length; i++) {
    const names = (lines[i] as string).trim().split(/\s+/)
    const numbers = (lines[i + 1] as string).trim().split(/\s+/)
    const proto = names[0]
    if (proto === undefined || !proto.endsWith(':') || numbers[0] !== proto || /^-?\d+$/.test(names[1] ?? '')) continue
    for (let k = 1; k < names.length; k++) values.set(`${proto}${names[k] as string}`, Number(numbers[k]))
    i++
  }
  const retransmitted = values.get('Tcp:RetransSegs')
  if (retransmitted === undefined) return undefined
  // D-SACKs sent: for a segment below what we had acknowledged, and for one already queued out of order.
  const duplicates = (values.get('TcpExt:TCPDSACKOldSent') ?? 0) + (values.get('TcpExt:TCPDSACKOfoSent') ?? 0)
  return { retransmittedSegments: retransmitted, duplicateSegmentsReceived: duplicates }
}
