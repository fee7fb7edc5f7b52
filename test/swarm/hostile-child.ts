import '../../src/polyfill.js'
import { HostilePeer } from './hostile-peer.js'

/**
 * The hostile process's side (hostile-process.ts): runs the attacks it is asked for, one
 * identity at a time, and answers over the IPC channel. Not a test file.
 */

interface Request { id: number, command: string, args: Record<string, unknown> }

let current: HostilePeer | undefined
let identities = 0

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
    const connection = await peer.connect(String(args.address))
    await Promise.allSettled([
      peer.askAndNeverRead(connection, String(args.object), Number(args.chunkCount)),
      peer.floodInterest(connection, 8),
      peer.floodInvalidRefs(connection, 4),
    ])
    return { peerId: peer.peerId }
  },
  leech: async (args) => {
    const peer = await fresh()
    const connection = await peer.connect(String(args.address))
    return await peer.leech(connection, String(args.bundleId), String(args.object), Number(args.chunkCount), Number(args.rounds))
  },
  stop: async () => {
    await current?.stop().catch(() => {})
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
