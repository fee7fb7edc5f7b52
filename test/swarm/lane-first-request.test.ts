import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree } from '../../src/store/index.js'
import { FIRST_MESSAGE_TIMEOUT_MS } from '../../src/swarm/constants.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { openLane } from '../../src/swarm/lane-offer.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { Attacker } from './attacker.js'
import { patternBytes, useSwarms, writeTree } from './swarm-fixture.js'

/**
 * A lane often comes up while its asker has nothing to ask that holder (at 16 hosts an edge asks
 * each of 15 holders a few chunks a pull). The holder keeps it for the first request as long as
 * the lane may sit idle, not a libp2p chunk stream's FIRST_MESSAGE_TIMEOUT_MS: closed then, the
 * asker's next chunk stream to it asked for a new lane, a TLS handshake at both ends each time.
 */

const MiB = 1024 * 1024

describe('a lane served before its asker has a request', () => {
  const { node, tempDir } = useSwarms()

  it('still answers its first request after a libp2p chunk stream\'s first-request wait', async () => {
    const holder = await node()
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(MiB, 91) })
    const { bundle } = await pushTree(holder.store, tree)
    const object = bundle.entries.find(e => e.type === 'F')?.checksum ?? ''
    const asker = await Attacker.start()
    try {
      const connection = await asker.connect(holder.address)
      const lane = await openLane(connection, { signal: AbortSignal.timeout(10_000), idleTimeoutMs: 10 * FIRST_MESSAGE_TIMEOUT_MS })
      const closed = new Promise<string>((resolve) => { lane.addEventListener('close', (evt) => { resolve(`closed: ${evt.error?.message ?? 'ended'}`) }, { once: true }) })
      lane.addEventListener('remoteCloseWrite', () => { lane.abort(new Error('the holder ended the lane')) }, { once: true })
      // The wait under test: past the libp2p stream's first-request wait, the lane is still up.
      const past = new Promise<string>((resolve) => { setTimeout(() => { resolve('open') }, FIRST_MESSAGE_TIMEOUT_MS + 2_000).unref() })
      expect(await Promise.race([closed, past])).toBe('open')

      const answered = new Promise<ChunkResponse>((resolve) => {
        readFrames(lane, { maxFrameBytes: 2 * MiB, messageTimeoutMs: 20_000, onFrame: (bytes) => { resolve(ChunkResponse.decode(bytes)) } })
      })
      const request = ChunkRequest.encode({ object: Buffer.from(object, 'hex'), index: 0, cancel: false })
      lane.send(new Uint8ArrayList(encodeVarint(request.byteLength), request))
      const response = await Promise.race([answered, closed.then(why => { throw new Error(why) })])
      expect(response.status).toBe(ChunkResponse.Status.OK)
      expect(response.data.byteLength).toBe(MiB)
      expect(holder.swarm.stats().lanes.served).toBe(1)
      lane.abort(new Error('test over'))
    } finally {
      await asker.stop()
    }
  }, 60_000)
})
