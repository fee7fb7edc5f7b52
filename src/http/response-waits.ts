/**
 * Where an arriving blob's response spent its time, for its debug line: waiting for the swarm
 * (the next chunk not yet stored), for the socket (every buffer still with the client's
 * connection), or reading a stored chunk back. Issue 8's neighbour-path question is which of
 * the three sets the pace: a response that waits on the socket is as fast as its client.
 */
export class ResponseWaits {
  swarmMs = 0
  /** Chunks the response had to wait for (more than WAITED_MS). */
  swarmWaits = 0
  socketMs = 0
  socketWaits = 0
  readMs = 0
  chunks = 0

  /** Times `step` and adds it to `kind`'s total. */
  async time<T>(kind: 'swarm' | 'socket' | 'read', step: Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      return await step
    } finally {
      const ms = performance.now() - started
      if (kind === 'swarm') {
        this.swarmMs += ms
        if (ms > WAITED_MS) this.swarmWaits++
      } else if (kind === 'socket') {
        this.socketMs += ms
        if (ms > WAITED_MS) this.socketWaits++
      } else {
        this.readMs += ms
        this.chunks++
      }
    }
  }

  /** Rounded for a log line. */
  summary (): Record<string, number> {
    return {
      chunks: this.chunks,
      swarmWaits: this.swarmWaits,
      swarmMs: Math.round(this.swarmMs),
      socketWaits: this.socketWaits,
      socketMs: Math.round(this.socketMs),
      readMs: Math.round(this.readMs),
    }
  }
}

/** A step shorter than this did not wait for anything (a resolved promise, an event already in). */
const WAITED_MS = 1
