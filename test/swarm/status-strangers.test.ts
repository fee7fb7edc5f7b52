import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { STATUS_STREAM_PROTOCOL } from '../../src/swarm/index.js'
import { encodeVarint } from '../../src/swarm/framing.js'
import { StatusBatch } from '../../src/swarm/pb/swarm-status.pb.js'
import { Attacker } from './attacker.js'
import { fakes, fakeStatuses, fields, heartbeat, until } from './fake-statuses.js'
import { ipOf } from '../../src/swarm/peer-score.js'
import { connect, nextEvent, useSwarms } from './swarm-fixture.js'

const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()

describe('a stranger in an open fleet', () => {
  const { node } = useSwarms()
  /**
   * Every node of these tests allows (and assumes its neighbours allow) this many introductions
   * at once and then one in 1,000 s, so a flood past it takes a few dozen keys, not thousands,
   * and nothing refills while a test runs: the allowance's rules are the same at any size. A
   * small view also keeps the adaptive period, and so each relay's wait, short.
   */
  const burst = 10
  const statusNode = async (site: string): ReturnType<typeof node> =>
    await node({ status: { source: async () => { const { intervalMs: _, ...rest } = fields(site); return rest }, intervalMs: 300, newPublishersBurst: burst, newPublishersPerSecond: 0.001 } })

  it('cannot fill a node\'s fleet view with self-signed nodes: past its allowance they are dropped, it is charged, and they go no further', async () => {
    const victim = await statusNode('victim')
    const third = await statusNode('third')
    // The victim's answer to the third's digest is the third's first view, exempt from any
    // allowance until it is applied whole: the flood starts after that, or the fakes travel in
    // it. Holding the victim does not say so: its heartbeat can come before its answer.
    const synced = nextEvent(third.swarm, 'status:synced', e => e.peer === victim.swarm.peerId, 30_000)
    await connect(victim, third)
    await synced
    const stranger = await Attacker.start()
    const count = burst * 2
    const flood = await fakeStatuses(count)
    const thirdCharges: string[] = []
    third.swarm.on('peer:penalized', (e) => { if (e.peer === victim.swarm.peerId) thirdCharges.push(e.detail) })
    try {
      const connection = await stranger.connect(victim.address)
      const charged = nextEvent(victim.swarm, 'peer:penalized', e => e.peer === stranger.peerId && /introduced/.test(e.detail), 60_000)
      const stream = await connection.newStream(STATUS_STREAM_PROTOCOL)
      for (let i = 0; i < count; i += burst / 2) stream.send(frame(StatusBatch.encode({ statuses: flood.slice(i, i + burst / 2) })))
      const charge = await charged
      expect(charge.kind).toBe('invalid-record')
      // The batch that overdrew was applied whole before the charge: the view holds what it will.
      const kept = fakes(victim.swarm)
      expect(kept).toBe(burst)
      // The third node hears of kept ones (relaying is gossip: nine tenths of its allowance at
      // once, the victim holding the rest back), never of a dropped one. Nine tenths less one:
      // when the victim's heartbeat reached the third before its answer to the third's digest,
      // the victim counted its own status in its model of the third's allowance (the third took
      // it as first view, but the victim cannot know that, and counting it is the safe side).
      const relayed = Math.floor(burst * 0.9) - 1
      await until('the third node holds what the victim relayed', () => fakes(third.swarm) >= relayed, third.swarm)
      const held = new Set(victim.swarm.fleetView().map(n => n.peerId))
      const dropped = new Set(flood.filter(f => !held.has(f.peerId)).map(f => f.peerId))
      expect(dropped.size).toBe(count - kept)
      const droppedAtThird = (): string[] => third.swarm.fleetView().filter(n => dropped.has(n.peerId)).map(n => n.peerId)
      expect(droppedAtThird()).toEqual([])

      // A second stranger introduces half a burst more, within its own allowance: the victim
      // keeps them, and relays what two strangers introduced no faster than the third node allows it.
      const second = await Attacker.start()
      try {
        const more = await fakeStatuses(burst / 2)
        const stream2 = await (await second.connect(victim.address)).newStream(STATUS_STREAM_PROTOCOL)
        stream2.send(frame(StatusBatch.encode({ statuses: more })))
        await until('the second stranger\'s fakes kept', () => fakes(victim.swarm) >= kept + burst / 2, victim.swarm)
        // Two later heartbeats of a fake both hold, relayed by the victim one after the other:
        // once the second is at the third node, every batch sent to it before has been applied.
        const marker = flood.find(f => third.swarm.fleetView().some(n => n.peerId === f.peerId)) as (typeof flood)[number]
        for (const ahead of [60_000, 120_000]) {
          const { status, sequence } = await heartbeat(marker, ahead)
          stream.send(frame(StatusBatch.encode({ statuses: [status] })))
          await until('the marker relayed', () => third.swarm.fleetView().some(n => n.peerId === marker.peerId && n.sequence === sequence), third.swarm)
        }
        expect(thirdCharges).toEqual([])
        expect(fakes(third.swarm)).toBeLessThan(kept + burst / 2)
        expect(droppedAtThird()).toEqual([])

        // A node that joins now takes the victim's whole view, past any allowance: its first
        // view is not introductions (its digest named only itself), and nobody is charged.
        const joiner = await statusNode('joiner')
        const joinerCharges: string[] = []
        joiner.swarm.on('peer:penalized', (e) => { joinerCharges.push(e.detail) })
        await connect(joiner, victim)
        await until('the joiner holds the victim\'s view', () => fakes(joiner.swarm) >= kept + burst / 2, joiner.swarm)
        expect(joinerCharges).toEqual([])
      } finally {
        await second.stop()
      }
    } finally {
      await stranger.stop()
    }
  }, 120_000)

  it('introduces no more new nodes with many identities from one network than with one, uncharged past the first, while another network still can', async () => {
    // Loopback is in no address group by default (as for bans: a test's nodes all live on
    // 127.0.0.1); here each loopback IP is a network, and the strangers all dial from 127.0.0.2.
    const victim = await node({ status: { source: async () => { const { intervalMs: _, ...rest } = fields('victim'); return rest }, intervalMs: 300, newPublishersBurst: burst, newPublishersPerSecond: 0.001, addressGroup: ipOf } })
    const third = await statusNode('third')
    await connect(victim, third)
    await until('the third node holds the victim', () => third.swarm.fleetView().some(n => n.peerId === victim.swarm.peerId), third.swarm)
    const strangers = await Promise.all([0, 1, 2].map(async () => await Attacker.start({ localAddress: '127.0.0.2' })))
    const charges: string[] = []
    victim.swarm.on('peer:penalized', (e) => { if (e.peer !== third.swarm.peerId) charges.push(e.detail) })
    try {
      const floods = await Promise.all(strangers.map(async () => await fakeStatuses(burst)))
      const streams = await Promise.all(strangers.map(async (s) => await (await s.connect(victim.address)).newStream(STATUS_STREAM_PROTOCOL)))
      streams[0]?.send(frame(StatusBatch.encode({ statuses: floods[0] })))
      await until('the first stranger\'s fakes kept', () => fakes(victim.swarm) >= burst, victim.swarm)
      // Each later stranger sends a whole allowance of its own, then a heartbeat of a fake the
      // victim holds: once that shows, its batches before it were applied.
      const marker = floods[0]?.[0] as (typeof floods)[number][number]
      for (const i of [1, 2]) {
        const { status, sequence } = await heartbeat(marker, i * 60_000)
        streams[i]?.send(frame(StatusBatch.encode({ statuses: floods[i] })))
        streams[i]?.send(frame(StatusBatch.encode({ statuses: [status] })))
        await until(`stranger ${i}'s batches applied`, () => victim.swarm.fleetView().some(n => n.peerId === marker.peerId && n.sequence === sequence), victim.swarm)
      }
      expect(fakes(victim.swarm)).toBe(burst)
      // Each stranger kept within its own allowance: the shared one's overdraft is not charged
      // (an honest node on a flood's network cannot know it, and would be banned with it).
      expect(charges).toEqual([])

      // A node of another network still introduces: a node that joins through the third.
      const joiner = await statusNode('joiner')
      await connect(joiner, third)
      await until('the victim holds the joiner', () => victim.swarm.fleetView().some(n => n.peerId === joiner.swarm.peerId), victim.swarm)
    } finally {
      for (const s of strangers) await s.stop()
    }
  }, 120_000)

  it('cannot push a neighbour out of a full view with its introductions, however long that neighbour was silent', async () => {
    const victim = await node({ status: { source: async () => { const { intervalMs: _, ...rest } = fields('victim'); return rest }, intervalMs: 300, maxKnownNodes: 20 } })
    // Heartbeats a minute apart: the neighbour is the longest silent node in the view by far.
    const neighbour = await node({ status: { source: async () => { const { intervalMs: _, ...rest } = fields('neighbour'); return rest }, intervalMs: 60_000 } })
    await connect(victim, neighbour)
    await until('the victim holds its neighbour', () => victim.swarm.fleetView().some(n => n.peerId === neighbour.swarm.peerId), victim.swarm)
    const stranger = await Attacker.start()
    const flood = await fakeStatuses(40)
    try {
      const connection = await stranger.connect(victim.address)
      const stream = await connection.newStream(STATUS_STREAM_PROTOCOL)
      stream.send(frame(StatusBatch.encode({ statuses: flood.slice(0, 20) })))
      // In two batches: the view is full after the first, and every fake of the second evicts one.
      await until('the view full of fakes', () => fakes(victim.swarm) >= 18, victim.swarm)
      stream.send(frame(StatusBatch.encode({ statuses: flood.slice(20) })))
      const last = flood[39]?.peerId
      await until('the last fake held', () => victim.swarm.fleetView().some(n => n.peerId === last), victim.swarm)
      const view = victim.swarm.fleetView()
      expect(view).toHaveLength(20)
      expect(view.some(n => n.peerId === neighbour.swarm.peerId)).toBe(true)
      expect(fakes(victim.swarm)).toBe(18)
    } finally {
      await stranger.stop()
    }
  })
})
