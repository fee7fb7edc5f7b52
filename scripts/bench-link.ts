// The containerd bench's shaped link (`--link-mbit N`, issue 8): the source of a pull (docker-registry
// in `direct`, the holder in `neighbour`) lives in a network namespace of its own, joined to the
// machine's namespace by one veth pair shaped with tbf at N Mbit/s in both directions, as a
// neighbour or a registry sits behind a fleet's link; containerd and the edge stay on the machine's
// loopback. N = 0 is the veth with no shaping (what the namespace and the veth alone cost).
//
//   machine's namespace: containerd, edge, linkbench0 (SUBNET.1/30) ──veth, tbf both ends── linkbench1 (SUBNET.2/30): namespace linkbench
//
// The bench's names are fixed, so a run killed with SIGKILL leaves something the next run finds and
// removes before it starts (benches run one at a time under /work/wt/bed.lock: two at once would
// share them); a test passes a name of its own.
import { readFile } from 'node:fs/promises'
import { pickSubnet, removeNetns, shape } from './fleet/bed.js'
import { inNetns, run } from './fleet/proc.js'

/** The bench's namespace; the veth's ends are this name with 0 (the machine's end) and 1. */
export const LINK_NAME = 'linkbench'
// The kernel's limit for interface names is 15 bytes (IFNAMSIZ - 1).
const MAX_NAME = 14
const ETHERNET_MTU = 1500
// IPv4's least (RFC 791: every host takes 576-byte datagrams; Linux's floor is 68), and a veth's most
// (loopback's 65536 is one more than a veth takes).
const MIN_MTU = 576
const MAX_MTU = 65535

export interface ShapedLink {
  /** The namespace the source runs in. */
  ns: string
  /** The veth's end in the machine's namespace: what a packet capture of the link watches. */
  rootIf: string
  /** Addresses of the machine's end and of the namespace's end. */
  rootIp: string
  nsIp: string
  /** The rate now, in Mbit/s; 0: no shaping. */
  mbit: number
  /** The veth's MTU (1500, an Ethernet's, unless asked otherwise). */
  mtu: number
  /** Prefix that runs a command inside the namespace (it must exec what follows, as `ip netns exec` does). */
  wrap: string[]
  /** Shapes both ends at another rate (0: takes the shaping off), for the pulls that follow. */
  setRate: (mbit: number, signal?: AbortSignal) => Promise<void>
  /** Bytes the machine's end has received so far: what crossed the link from the source's side. */
  receivedBytes: () => Promise<number>
  /** Removes the namespace (and every process still in it), the veth and its qdiscs. Never throws. */
  close: () => Promise<string[]>
}

/** Removes what an earlier run left: the namespace `name` (with its processes) and the machine's end of its veth. */
export async function removeLink (name = LINK_NAME): Promise<string[]> {
  const problems = await removeNetns(name)
  // Deleting the namespace deletes its veth end and with it the pair; this is for a run that died between the two.
  const result = await run(['ip', 'link', 'del', `${name}0`], { allowFailure: true })
  if (result.code !== 0 && !/Cannot find device|does not exist/i.test(result.stderr)) problems.push(`ip link del ${name}0: ${result.stderr.trim()}`)
  return problems
}

/**
 * Makes the namespace `name` and its veth, shaped at `mbit` Mbit/s each way (0: not shaped), with
 * `mtu` on both ends: a fleet's Ethernet has 1500 (jumbo frames 9000); loopback has 65536, and what
 * a byte costs the two ends' kernels goes with the number of packets.
 */
export async function startShapedLink (mbit: number, options: { name?: string, mtu?: number, signal?: AbortSignal } = {}): Promise<ShapedLink> {
  const { name = LINK_NAME, mtu = ETHERNET_MTU, signal } = options
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) throw new RangeError(`--link-mtu takes ${MIN_MTU} to ${MAX_MTU} bytes, not ${mtu}`)
  checkRate(mbit)
  if (name.length > MAX_NAME) throw new RangeError(`a link's name makes interface names: at most ${MAX_NAME} characters, not ${name}`)
  const leftover = await removeLink(name)
  if (leftover.length > 0) throw new Error(`cannot remove an earlier run's link: ${leftover.join('; ')}`)
  const subnet = await pickSubnet()
  const rootIf = `${name}0`
  const nsIf = `${name}1`
  const link: ShapedLink = {
    ns: name, rootIf, rootIp: `${subnet}.1`, nsIp: `${subnet}.2`, mbit, mtu, wrap: inNetns(name, []), close: async () => await removeLink(name),
    receivedBytes: async () => Number(await readFile(`/sys/class/net/${rootIf}/statistics/rx_bytes`, 'utf8')),
    setRate: async (rate, rateSignal) => {
      checkRate(rate)
      // Each end shapes what it sends: the machine's end the requests (and the image's upload
      // before the runs), the namespace's end what the source serves.
      if (rate > 0) {
        await shape(undefined, rootIf, rate * 1e6, rateSignal)
        await shape(name, nsIf, rate * 1e6, rateSignal)
      } else if (link.mbit > 0) {
        await run(['tc', 'qdisc', 'del', 'dev', rootIf, 'root'], { signal: rateSignal })
        await run(inNetns(name, ['tc', 'qdisc', 'del', 'dev', nsIf, 'root']), { signal: rateSignal })
      }
      link.mbit = rate
    },
  }
  try {
    await run(['ip', 'netns', 'add', name], { signal })
    await run(['ip', '-n', name, 'link', 'set', 'lo', 'up'], { signal })
    await run(['ip', 'link', 'add', rootIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', name], { signal })
    await run(['ip', 'addr', 'add', `${link.rootIp}/30`, 'dev', rootIf], { signal })
    await run(['ip', 'link', 'set', rootIf, 'mtu', String(mtu), 'up'], { signal })
    await run(['ip', '-n', name, 'addr', 'add', `${link.nsIp}/30`, 'dev', nsIf], { signal })
    await run(['ip', '-n', name, 'link', 'set', nsIf, 'mtu', String(mtu), 'up'], { signal })
    link.mbit = 0
    await link.setRate(mbit, signal)
    return link
  } catch (err) {
    await removeLink(name)
    throw err
  }
}

function checkRate (mbit: number): void {
  if (!Number.isFinite(mbit) || mbit < 0) throw new RangeError(`--link-mbit takes a rate in Mbit/s (0: a veth with no shaping), not ${mbit}`)
}

/**
 * On SIGINT or SIGTERM, runs `cleanup` (which must not throw) and exits: without it a Ctrl-C
 * would leave the namespace and the processes in it. Returns what removes the handlers.
 */
export function onInterrupt (cleanup: () => Promise<unknown>): () => void {
  const handler = (signal: NodeJS.Signals): void => {
    process.stderr.write(`${signal}: removing the shaped link…\n`)
    void cleanup().finally(() => { process.exit(signal === 'SIGINT' ? 130 : 143) })
  }
  process.once('SIGINT', handler)
  process.once('SIGTERM', handler)
  return () => {
    process.off('SIGINT', handler)
    process.off('SIGTERM', handler)
  }
}
