import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree } from '../../src/store/index.js'
import { CHUNK_PROTOCOL } from '../../src/swarm/index.js'
import { CHUNK_SEND_TIMEOUT_MS, MAX_CHUNK_RESPONSE_BYTES } from '../../src/swarm/constants.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { ChunkRequest } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { ReaderClock } from '../../src/swarm/reader-clock.js'
import type { Stream } from '@libp2p/interface'
import { waitFor } from '../helpers/daemon-process.js'
import { within } from '../helpers/within.js'
import { Attacker } from './attacker.js'
import { patternBytes, useSwarms, writeTree } from './swarm-fixture.js'

const MiB = 1024 * 1024
const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()

describe('a chunk stream\'s reader clock', () => {
  function clock (): { clock: ReaderClock, at: (ms: number) => void, read: (bytes: number) => void } {
    let now = 0
    let read = 0
    return { clock: new ReaderClock(() => read, 30_000, () => now), at: (ms) => { now = ms }, read: (bytes) => { read += bytes } }
  }

  it('runs across a stream\'s waits on its reader and stops between them (our disk, our upload cap)', () => {
    const { clock: c, at } = clock()
    c.run()
    at(20_000)
    c.pause()
    // Waiting on our own upload cap for a minute: not the reader's time.
    at(80_000)
    c.run()
    at(89_000)
    expect(c.leftMs()).toBe(1_000)
    at(90_000)
    expect(c.leftMs()).toBe(0)
  })

  it('starts over only when the reader reads, and afresh once nothing waits on the reader', () => {
    const { clock: c, at, read } = clock()
    c.run()
    at(25_000)
    read(1)
    expect(c.leftMs()).toBe(30_000)
    at(40_000)
    c.pause()
    expect(c.leftMs()).toBe(15_000)
    c.clear()
    expect(c.leftMs()).toBe(30_000)
  })
})

describe('a peer whose two chunk streams stop reading', () => {
  const { node, tempDir } = useSwarms()

  /**
   * The holder gives a peer that has read nothing one chunk unread (a stranger's budget shrunk to
   * one chunk), so stream A, sent its first chunk, fills it and waits on its pace, and stream B,
   * asking after, waits on the budget. A is charged a slow reader CHUNK_SEND_TIMEOUT_MS on and
   * closed; its close gives B room, B sends a chunk into its window and waits on its pace. On
   * main that pace wait was a fresh 30 s: B was charged ~60 s after it began to wait, 30 s late.
   */
  it('charges the stream given budget room by its sibling\'s close within one CHUNK_SEND_TIMEOUT_MS of its first wait', async () => {
    const holder = await node({ strangerUnreadBytes: MAX_CHUNK_RESPONSE_BYTES })
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(16 * MiB, 4141) })
    const { bundle } = await pushTree(holder.store, tree)
    const object = Buffer.from(bundle.entries.find(e => e.type === 'F')?.checksum ?? '', 'hex')
    const attacker = await Attacker.start()
    try {
      const connection = await attacker.connect(holder.address)
      const charges: Array<{ kind: string, at: number }> = []
      let chargedTwice: () => void = () => {}
      const twoCharges = new Promise<void>((resolve) => { chargedTwice = resolve })
      holder.swarm.on('peer:penalized', (e) => {
        if (e.peer !== attacker.peerId) return
        charges.push({ kind: e.kind, at: Date.now() })
        if (charges.length === 2) chargedTwice()
      })
      const ask = async (first: number): Promise<Stream> => {
        const stream = await connection.newStream(CHUNK_PROTOCOL)
        // Read nothing: the listener only keeps the stream from being reset for unread data.
        readFrames(stream, { maxFrameBytes: 2 * MiB, messageTimeoutMs: 300_000, onFrame: () => {} })
        stream.pause()
        const requests = new Uint8ArrayList()
        for (let i = first; i < first + 8; i++) requests.append(frame(ChunkRequest.encode({ object, index: i, cancel: false })))
        stream.send(requests.subarray())
        return stream
      }
      const uploaded = (): number => holder.swarm.stats().perPeer[attacker.peerId]?.bytesUploaded ?? 0
      const a = await ask(0)
      // A's first chunk went: the one-chunk budget is full, A waits on its pace.
      await waitFor('the first chunk handed to stream A', async () => uploaded() >= MiB ? true : undefined, 20_000)
      const b = await ask(8)
      const bWaitsFrom = Date.now()
      // The code's bound plus a margin for a loaded machine: on main B's charge came ~60 s on.
      const boundMs = CHUNK_SEND_TIMEOUT_MS + 12_000
      await within(twoCharges, boundMs, () => `two slow-reader charges after B's first wait (charged: ${charges.map(c => `${c.kind} at ${c.at - bWaitsFrom} ms`).join(', ') || 'nothing'})`)
      console.log(`charges after B's first wait: ${charges.map(c => `${c.kind} ${c.at - bWaitsFrom} ms`).join(', ')}`)
      expect(charges.map(c => c.kind)).toEqual(['slow-reader', 'slow-reader'])
      // B was handed its chunk only once A closed: nothing more than the budget went unread before.
      expect(uploaded()).toBeLessThanOrEqual(2 * MiB)
      await waitFor('both streams reset', async () => a.status === 'reset' && b.status === 'reset' ? true : undefined, 10_000)
    } finally {
      await attacker.stop()
    }
  }, 2 * CHUNK_SEND_TIMEOUT_MS + 30_000)
})
