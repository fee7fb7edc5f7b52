import type { Server } from 'node:http'
import { waitWhile, Wakers } from '../wait/index.js'

/**
 * How long a stopping daemon lets the registry mirror's responses under way finish before it
 * cuts them. SIGTERM mid-layer cut containerd's body, and containerd then fell back to the
 * upstream registry for the layer (the bytes the fleet is there to spare it) or failed the pull
 * (test/e2e/containerd-sigterm.test.ts). Under Kubernetes' default 30 s grace and systemd's 90 s,
 * with room left for the rest of the stop; a layer still arriving after it is cut as before.
 */
export const REGISTRY_DRAIN_MS = 15_000

/** Counts a server's requests under way, from the start, so a stop can wait for them. */
export class RequestDrain {
  private active = 0
  private readonly wakers = new Wakers()

  constructor (server: Server) {
    server.on('request', (_request, response) => {
      this.active++
      response.once('close', () => {
        this.active--
        this.wakers.wakeAll()
      })
    })
  }

  /**
   * Stops `server` accepting connections (its idle keep-alive ones close) and waits up to
   * `timeoutMs` for the requests under way to finish; returns how many are left (the caller
   * cuts them).
   */
  async drain (server: Server, timeoutMs: number): Promise<number> {
    server.close()
    await waitWhile(() => this.active > 0, this.wakers.subscribe, { timeoutMs })
    return this.active
  }
}
