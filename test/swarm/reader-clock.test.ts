import { describe, expect, it, vi } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree } from '../../src/store/index.js'
import { CHUNK_PROTOCOL } from '../../src/swarm/index.js'
import { CHUNK_SEND_TIMEOUT_MS, MAX_CHUNK_RESPONSE_BYTES } from '../../src/swarm/constants.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { ChunkRequest } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { onReaderClock, READER_CLOCK_LOOK_MS, ReaderClock } from '../../src/swarm/reader-clock.js'
import { SlowReaderError } from '../../src/swarm/errors.js'
import type { Connection, Stream } from '@libp2p/interface'
import { waitFor } from '../helpers/daemon-process.js'
import { within } from '../helpers/within.js'
import { Attacker } from './attacker.js'
import { patternBytes, useSwarms, writeTree, type TestNode } from './swarm-fixture.js'

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


describe('a wait on the reader clock', () => {
  /**
   * A read that comes just after a wait began (credits on their way when the reader stopped)
   * was seen only when the clock was looked at again as it was due to run out, and the clock
   * started over from then: the reader was charged ~60 s after it stopped, not ~30 s
   * (hostile-lanes, 4 of 15 traced runs). Fake timers: the clock's time and the wait's timers.
   */
  it('counts a read from about when it came, not from when the clock was due to run out', async () => {
    vi.useFakeTimers()
    try {
      let read = 0
      const clock = new ReaderClock(() => read, CHUNK_SEND_TIMEOUT_MS, () => Date.now())
      let outcome: unknown
      const waiting = onReaderClock(clock, new AbortController().signal, async (within) => {
        await new Promise<void>((_resolve, reject) => { within.addEventListener('abort', () => { reject(within.reason) }, { once: true }) })
      }).then(() => { outcome = 'resolved' }, (err: unknown) => { outcome = err })
      await vi.advanceTimersByTimeAsync(100)
      // The last credits of what it had taken before it stopped.
      read = 64 * 1024
      await vi.advanceTimersByTimeAsync(CHUNK_SEND_TIMEOUT_MS + READER_CLOCK_LOOK_MS)
      // On main the read was seen at 30 s and the wait ran on to 60 s.
      expect(outcome).toBeInstanceOf(SlowReaderError)
      await waiting
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('a peer whose two chunk streams stop reading', () => {
  const { node, tempDir } = useSwarms()

  /** A holder of a 16 MiB object, and an attacker connected to it. */
  async function holderAndAttacker (init: { strangerUnreadBytes?: number, yamuxWindowBytes?: number }, seed: number): Promise<{ holder: TestNode, object: Uint8Array<ArrayBuffer>, attacker: Attacker }> {
    const holder = await node(init)
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(16 * MiB, seed) })
    const { bundle } = await pushTree(holder.store, tree)
    const object = Buffer.from(bundle.entries.find(e => e.type === 'F')?.checksum ?? '', 'hex')
    return { holder, object, attacker: await Attacker.start({ yamuxWindowBytes: init.yamuxWindowBytes }) }
  }

  /** The holder's charges of the attacker; `twice` waits for the second within `boundMs` of `from` and checks both. */
  function chargesOf (holder: TestNode, attacker: Attacker): { twice: (from: number, boundMs: number) => Promise<void> } {
    const charges: Array<{ kind: string, at: number }> = []
    let chargedTwice: () => void = () => {}
    const twoCharges = new Promise<void>((resolve) => { chargedTwice = resolve })
    holder.swarm.on('peer:penalized', (e) => {
      if (e.peer !== attacker.peerId) return
      charges.push({ kind: e.kind, at: Date.now() })
      if (charges.length === 2) chargedTwice()
    })
    const twice = async (from: number, boundMs: number): Promise<void> => {
      const seen = (): string => charges.map(c => `${c.kind} at ${c.at - from} ms`).join(', ')
      await within(twoCharges, boundMs, () => `two slow-reader charges after B's first wait (charged: ${seen() || 'nothing'})`)
      console.log(`charges after B's first wait: ${seen()}`)
      expect(charges.map(c => c.kind)).toEqual(['slow-reader', 'slow-reader'])
    }
    return { twice }
  }

  /** Opens a chunk stream that asks 8 chunks from `first` and reads nothing. */
  async function askUnread (connection: Connection, object: Uint8Array<ArrayBuffer>, first: number): Promise<Stream> {
    const stream = await connection.newStream(CHUNK_PROTOCOL)
    // Read nothing: the listener only keeps the stream from being reset for unread data.
    readFrames(stream, { maxFrameBytes: 2 * MiB, messageTimeoutMs: 300_000, onFrame: () => {} })
    stream.pause()
    const requests = new Uint8ArrayList()
    for (let i = first; i < first + 8; i++) requests.append(frame(ChunkRequest.encode({ object, index: i, cancel: false })))
    stream.send(requests.subarray())
    return stream
  }

  /**
   * The holder gives a peer that has read nothing one chunk unread (a stranger's budget shrunk to
   * one chunk), so stream A, sent its first chunk, fills it and waits on its pace, and stream B,
   * asking after, waits on the budget. A is charged a slow reader CHUNK_SEND_TIMEOUT_MS on and
   * closed; its close gives B room, B sends a chunk into its window and waits on its pace. On
   * main that pace wait was a fresh 30 s: B was charged ~60 s after it began to wait, 30 s late.
   */
  it('charges the stream given budget room by its sibling\'s close within one CHUNK_SEND_TIMEOUT_MS of its first wait', async () => {
    const { holder, object, attacker } = await holderAndAttacker({ strangerUnreadBytes: MAX_CHUNK_RESPONSE_BYTES }, 4141)
    try {
      const connection = await attacker.connect(holder.address)
      const charged = chargesOf(holder, attacker)
      const uploaded = (): number => holder.swarm.stats().perPeer[attacker.peerId]?.bytesUploaded ?? 0
      const a = await askUnread(connection, object, 0)
      // A's first chunk went: the one-chunk budget is full, A waits on its pace.
      await waitFor('the first chunk handed to stream A', async () => uploaded() >= MiB ? true : undefined, 20_000)
      const b = await askUnread(connection, object, 8)
      // The code's bound plus a margin for a loaded machine: on main B's charge came ~60 s on.
      await charged.twice(Date.now(), CHUNK_SEND_TIMEOUT_MS + 12_000)
      // B was handed its chunk only once A closed: nothing more than the budget went unread before.
      expect(uploaded()).toBeLessThanOrEqual(2 * MiB)
      await waitFor('both streams reset', async () => a.status === 'reset' && b.status === 'reset' ? true : undefined, 10_000)
    } finally {
      await attacker.stop()
    }
  }, 2 * CHUNK_SEND_TIMEOUT_MS + 30_000)

  /**
   * The budget wait's clock runs while the bytes the reader has not taken leave no room, not
   * while our own reservations do (a sibling's chunk on its way from disk or at our upload cap).
   * But a sibling's chunk stuck in its send, the reader not taking it, stays reserved until the
   * send ends: counted as ours, it paused this stream's clock until the sibling was charged and
   * closed, and this stream's 30 s began only then. Here the holder's yamux window is half a
   * chunk, so stream A's first chunk sticks in its send (its clock runs: charged at 30 s); the
   * stranger's budget of two chunks is full with A's chunk counted sent and reserved, and B,
   * asking next, waits on the budget from its first request. On main B was not charged within
   * the bound (42 s).
   */
  it('charges a stream whose budget room is held by a sibling\'s chunk stuck in its send within one CHUNK_SEND_TIMEOUT_MS of its first wait', async () => {
    const window = 512 * 1024
    const { holder, object, attacker } = await holderAndAttacker({ yamuxWindowBytes: window }, 4242)
    try {
      const connection = await attacker.connect(holder.address)
      const charged = chargesOf(holder, attacker)
      const a = await askUnread(connection, object, 0)
      // A's first chunk is in its send: the window is out, the rest waits on the reader.
      await waitFor('stream A\'s window full at the reader', async () => a.readBufferLength >= window ? true : undefined, 20_000)
      const b = await askUnread(connection, object, 8)
      await charged.twice(Date.now(), CHUNK_SEND_TIMEOUT_MS + 12_000)
      // Neither stream's chunk left our hands whole.
      expect(holder.swarm.stats().perPeer[attacker.peerId]?.bytesUploaded ?? 0).toBe(0)
      await waitFor('both streams reset', async () => a.status === 'reset' && b.status === 'reset' ? true : undefined, 10_000)
    } finally {
      await attacker.stop()
    }
  }, 2 * CHUNK_SEND_TIMEOUT_MS + 30_000)
})
