import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree } from '../../src/store/index.js'
import { HAVE_PROTOCOL } from '../../src/swarm/index.js'
import { MAX_HAVE_MESSAGE_BYTES } from '../../src/swarm/constants.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { HaveMessage } from '../../src/swarm/pb/swarm-have.pb.js'
import { within } from '../helpers/within.js'
import { Attacker } from './attacker.js'
import { patternBytes, useSwarms, writeTree } from './swarm-fixture.js'

const MiB = 1024 * 1024
const unhex = (id: string): Uint8Array<ArrayBuffer> => Uint8Array.from(Buffer.from(id, 'hex'))
const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()

/**
 * A neighbour that drops a bundle (a pull stopped as not wanted takes its description back) and
 * takes it up again (a blob of it asked for after) must be told again what the holder has of it:
 * it forgot. The holder kept the objects tracked, so the second interest sent nothing, and the
 * neighbour's pull knew no holder and stalled until the registry's 10 s first-chunk timer.
 */
describe('a neighbour\'s interest in a bundle it dropped and took up again', () => {
  const { node, tempDir } = useSwarms()

  it('is answered with the holder\'s state of the bundle\'s objects again', async () => {
    const holder = await node()
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(2 * MiB, 5) })
    const { bundleId, bundle } = await pushTree(holder.store, tree)
    const object = bundle.entries.find(e => e.type === 'F')?.checksum ?? ''
    const neighbour = await Attacker.start()
    try {
      const connection = await neighbour.connect(holder.address)
      const stream = await connection.newStream(HAVE_PROTOCOL)
      let told = 0
      let woken: () => void = () => {}
      readFrames(stream, {
        maxFrameBytes: MAX_HAVE_MESSAGE_BYTES,
        messageTimeoutMs: 60_000,
        onFrame: (bytes) => {
          const message = HaveMessage.decode(bytes)
          told += message.objects.filter(o => Buffer.from(o.object).toString('hex') === object && o.whole).length
          woken()
        },
      })
      const toldAtLeast = async (n: number): Promise<void> => {
        while (told < n) await new Promise<void>(resolve => { woken = resolve })
      }
      stream.send(frame(HaveMessage.encode({ hello: { gateway: false, bundles: [unhex(bundleId)] } })))
      await within(toldAtLeast(1), 10_000, 'the holder\'s state of the object')
      stream.send(new Uint8ArrayList(
        frame(HaveMessage.encode({ interest: { added: [], removed: [unhex(bundleId)] } })),
        frame(HaveMessage.encode({ interest: { added: [unhex(bundleId)], removed: [] } })),
      ))
      await within(toldAtLeast(2), 10_000, () => `the holder's state told again (told ${told} time(s))`)
      expect(told).toBe(2)
    } finally {
      await neighbour.stop()
    }
  })
})
