/**
 * Where an arriving blob's response spent its time, for its debug line: waiting for the swarm
 * (the next chunk not yet stored), for the socket (every buffer still with the client's
 * connection), or reading a stored chunk back. Issue 8's neighbour-path question is which of
 * the three sets the pace: a response that waits on the socket is as fast as its client.
 */
export class ResponseWaits {
  /** Per kind: its time, and how many steps (for the swarm and the socket, those that waited more than WAITED_MS; for reads, every chunk read). */
  private readonly totals = { swarm: { ms: 0, count: 0 }, socket: { ms: 0, count: 0 }, read: { ms: 0, count: 0 } }
  /** Chunks sent from their verified bytes, not read back. */
  private fromVerified = 0

  /** A chunk went out from its verified bytes. */
  sentFromVerified (): void {
    this.fromVerified++
  }

  /** Times `step` and adds it to `kind`'s total. */
  async time<T>(kind: 'swarm' | 'socket' | 'read', step: Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      return await step
    } finally {
      const ms = performance.now() - started
      const total = this.totals[kind]
      total.ms += ms
      if (kind === 'read' || ms > WAITED_MS) total.count++
    }
  }

  /** Rounded for a log line. */
  summary (): Record<string, number> {
    const { swarm, socket, read } = this.totals
    return {
      chunks: read.count + this.fromVerified,
      fromVerified: this.fromVerified,
      swarmWaits: swarm.count,
      swarmMs: Math.round(swarm.ms),
      socketWaits: socket.count,
      socketMs: Math.round(socket.ms),
      readMs: Math.round(read.ms),
    }
  }
}

/** A step shorter than this did not wait for anything (a resolved promise, an event already in). */
const WAITED_MS = 1
