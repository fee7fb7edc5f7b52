import { describe, expect, it } from 'vitest'
import { CHUNK_PROTOCOL } from '../../src/swarm/index.js'
import { FIRST_MESSAGE_TIMEOUT_MS } from '../../src/swarm/constants.js'
import { Attacker } from './attacker.js'
import { useSwarms } from './swarm-fixture.js'

/**
 * A chunk stream that carries no request is closed when FIRST_MESSAGE_TIMEOUT_MS runs out, to free
 * its slot, and its opener is not charged: on the 16-host bed honest edges' first requests waited
 * longer than that behind their own uplinks' chunk data, and each such charge was half a ban.
 */
describe('a chunk stream left without a request', () => {
  const { node } = useSwarms()

  it('is closed after the first-request wait, and its opener is not charged', async () => {
    const gateway = await node({ gateway: true })
    const charges: string[] = []
    gateway.swarm.on('peer:penalized', (e) => { charges.push(`${e.kind}: ${e.detail}`) })
    const opener = await Attacker.start()
    try {
      const connection = await opener.connect(gateway.address)
      const stream = await connection.newStream(CHUNK_PROTOCOL)
      const openedAt = Date.now()
      const closed = new Promise<void>((resolve) => { stream.addEventListener('close', () => { resolve() }, { once: true }) })
      const timeout = new Promise<never>((_resolve, reject) => {
        setTimeout(() => { reject(new Error('the silent chunk stream was still open 3x the first-request wait later')) }, 3 * FIRST_MESSAGE_TIMEOUT_MS).unref()
      })
      await Promise.race([closed, timeout])
      // Closed by the holder's wait, not by anything sooner.
      expect(Date.now() - openedAt).toBeGreaterThanOrEqual(FIRST_MESSAGE_TIMEOUT_MS - 1_000)
      expect(charges).toEqual([])
      expect(gateway.swarm.banned()).toEqual([])
      // Still a neighbour in good standing: it may open another chunk stream.
      const again = await connection.newStream(CHUNK_PROTOCOL)
      expect(again.status).toBe('open')
      again.abort(new Error('done'))
    } finally {
      await opener.stop()
    }
  }, 60_000)
})
