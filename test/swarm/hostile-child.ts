import '../../src/polyfill.js'
import { Attacker } from './attacker.js'
import { HostilePeer } from './hostile-peer.js'

/**
 * The hostile process's side (hostile-process.ts): runs the attacks it is asked for, one
 * identity at a time, and answers over the IPC channel. Not a test file.
 */

interface Request { id: number, command: string, args: Record<string, unknown> }

let current: HostilePeer | undefined
let identities = 0
/** Nodes of the identity flood (one identity each), kept until the process stops. */
const held: Attacker[] = []

async function fresh (): Promise<HostilePeer> {
  await current?.stop().catch(() => {})
  current = await HostilePeer.start()
  identities++
  return current
}

const commands: Record<string, (args: Record<string, unknown>) => Promise<unknown>> = {
  ready: async () => true,
  identities: async () => identities,
  /** CPU this process used so far, in ms (user + system): what the attack cost the machine. */
  cpu: async () => { const { user, system } = process.cpuUsage(); return (user + system) / 1000 },
  floodRound: async (args) => {
    const peer = await fresh()
    let connection
    try {
      connection = await peer.connect(String(args.address))
    } catch {
      return { peerId: peer.peerId, refused: true }
    }
    await Promise.allSettled([
      peer.askAndNeverRead(connection, String(args.object), Number(args.chunkCount)),
      peer.floodInterest(connection, 8),
      peer.floodInvalidRefs(connection, 4),
    ])
    return { peerId: peer.peerId, refused: false }
  },
  /** `count` fresh identities dial `address` from `localAddress`, eight at a time, and stay. */
  identityFlood: async (args) => {
    const count = Number(args.count)
    for (let i = 0; i < count; i += 8) {
      await Promise.all(Array.from({ length: Math.min(8, count - i) }, async () => {
        const node = await Attacker.start({ localAddress: String(args.localAddress) })
        held.push(node)
        identities++
        await node.connect(String(args.address)).catch(() => {})
      }))
    }
    return held.length
  },
  /** Hangs up every identity of the flood (their slots free; a new key each is all it takes to come back). */
  release: async () => {
    await Promise.allSettled(held.splice(0).map(async node => { await node.stop() }))
    return true
  },
  /** Identities of the flood whose connection is open now (the rest were refused). */
  admitted: async () => held.filter(node => node.node.getConnections().some(c => c.status === 'open')).length,
  leech: async (args) => {
    const peer = await fresh()
    const connection = await peer.connect(String(args.address))
    return await peer.leech(connection, String(args.bundleId), String(args.object), Number(args.chunkCount), Number(args.rounds))
  },
  stop: async () => {
    await current?.stop().catch(() => {})
    await Promise.allSettled(held.map(async node => { await node.stop() }))
    current = undefined
    setImmediate(() => { process.exit(0) })
    return true
  },
}

process.on('message', (message: Request) => {
  const command = commands[message.command]
  if (command === undefined) {
    process.send?.({ id: message.id, error: `no command ${message.command}` })
    return
  }
  command(message.args).then(
    (result) => { process.send?.({ id: message.id, result }) },
    (err: unknown) => { process.send?.({ id: message.id, error: err instanceof Error ? err.message : String(err) }) },
  )
})
// The test process went away: so does the attacker.
process.on('disconnect', () => { process.exit(0) })
