import { spawn, type ChildProcess } from 'node:child_process'
import { setPriority } from 'node:os'
import { fileURLToPath } from 'node:url'

/**
 * The adversary in its own process, as it would be on its own host. In the test process it
 * shared one event loop with the gateway and both edges, so its own work (key generation,
 * handshakes, encoding floods, decrypting what a leech downloads) was charged to the honest
 * pulls it was measured against. The child (hostile-child.ts) runs HostilePeer and answers
 * one request at a time over the IPC channel.
 */

export interface FloodRound {
  /** The identity that flooded this round. */
  peerId: string
  /** The target would not let it connect (its IP brought too many new identities). */
  refused: boolean
}

interface Reply { id: number, result?: unknown, error?: string }

export class HostileProcess {
  private next = 0
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void, reject: (err: Error) => void }>()
  private exited: Error | undefined

  private constructor (private readonly child: ChildProcess) {
    child.on('message', (message: Reply) => {
      const call = this.waiting.get(message.id)
      if (call === undefined) return
      this.waiting.delete(message.id)
      if (message.error !== undefined) call.reject(new Error(`the hostile process: ${message.error}`))
      else call.resolve(message.result)
    })
    child.on('exit', (code, signal) => {
      this.exited = new Error(`the hostile process exited (${code ?? signal ?? '?'})`)
      for (const call of this.waiting.values()) call.reject(this.exited)
      this.waiting.clear()
    })
  }

  /**
   * `lowPriority`: the attacker runs at the lowest CPU priority (nice 19). On a fleet the
   * attacker is another machine; here it shares two cores with the gateway and both edges it
   * is measured against, and its own work (key generation, handshakes, encoding its floods)
   * was charged to the honest pulls (~3 CPU-s of a 7 s pull before the flood got cheaper).
   * It still floods as fast as the cores the fleet leaves idle allow. Lowered once the child
   * is ready: its start-up (tsx compiling, libp2p loading) is no part of the attack, and at
   * nice 19 on a machine at load ~13 it took 49 s of the flood row's 150 s.
   */
  static async start (options: { lowPriority?: boolean } = {}): Promise<HostileProcess> {
    const script = fileURLToPath(new URL('./hostile-child.ts', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const started = new HostileProcess(child)
    await started.call('ready', {})
    if (options.lowPriority === true && child.pid !== undefined) setPriority(child.pid, 19)
    return started
  }

  /**
   * Rows 3, 4 and 8 with a fresh identity: stops the previous one, connects to `address`,
   * opens unread chunk streams, floods interest and invalid ref records; resolves when the
   * three attacks have run (or were cut off).
   */
  async floodRound (address: string, object: string, chunkCount: number): Promise<FloodRound> {
    return await this.call('floodRound', { address, object, chunkCount }) as FloodRound
  }

  /** Row 10 with a fresh identity: how many OK answers each chunk got over `rounds` asks. */
  async leech (address: string, bundleId: string, object: string, chunkCount: number, rounds: number): Promise<number[]> {
    return await this.call('leech', { address, bundleId, object, chunkCount, rounds }) as number[]
  }

  /** `count` fresh identities connect to `address` from `localAddress` and stay connected. */
  async identityFlood (address: string, count: number, localAddress: string): Promise<number> {
    return await this.call('identityFlood', { address, count, localAddress }) as number
  }

  /** Hangs up every identity of the flood. */
  async release (): Promise<void> {
    await this.call('release', {})
  }

  /** Identities of the flood still connected (the rest were refused). */
  async admitted (): Promise<number> {
    return await this.call('admitted', {}) as number
  }

  /** Identities the process started so far. */
  async identities (): Promise<number> {
    return await this.call('identities', {}) as number
  }

  /** CPU the attacker's process used so far (ms): on a shared box it is taken from the honest pulls. */
  async cpuMs (): Promise<number> {
    return await this.call('cpu', {}) as number
  }

  async stop (): Promise<void> {
    if (this.exited !== undefined) return
    const exited = new Promise<void>((resolve) => { this.child.once('exit', () => { resolve() }) })
    try {
      await this.call('stop', {})
    } catch {
      // Exiting is what we asked for.
    }
    if (this.exited === undefined) this.child.kill()
    await exited
  }

  private async call (command: string, args: Record<string, unknown>): Promise<unknown> {
    if (this.exited !== undefined) throw this.exited
    const id = this.next++
    return await new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.child.send({ id, command, args })
    })
  }
}
