import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { createMetrics } from '../../src/http/index.js'
import { STATUS_STREAM_PROTOCOL } from '../../src/swarm/index.js'
import { encodeVarint } from '../../src/swarm/framing.js'
import { ipOf } from '../../src/swarm/peer-score.js'
import { RecordBatch, SignedRecord } from '../../src/swarm/pb/swarm-record.pb.js'
import { StatusBatch } from '../../src/swarm/pb/swarm-status.pb.js'
import { REF_PROTOCOL, REF_RECORDS_BURST } from '../../src/swarm/ref-protocol.js'
import { Attacker } from '../swarm/attacker.js'
import { fakes, fakeStatuses, fields, heartbeat, until } from '../swarm/fake-statuses.js'
import { connect, nextEvent, useSwarms } from '../swarm/swarm-fixture.js'

const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()

/** One sample of a scrape: `name{labels} value` (0 when absent). */
function sample (text: string, name: string, labels = ''): number {
  const escaped = `${name}${labels === '' ? '' : `{${labels}}`}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const match = new RegExp(`^${escaped} ([0-9.e+-]+)$`, 'm').exec(text)
  return match?.[1] === undefined ? 0 : Number(match[1])
}

describe('/metrics after a flood', () => {
  const { node } = useSwarms()

  it('counts what the fleet view and the record sync turned away, the charges, and the refs evicted', async () => {
    const burst = 10
    const gateway = await node()
    const victim = await node({
      trust: [gateway.swarm.peerId],
      heardRefs: { maxPerPublisher: 2 },
      status: { source: async () => { const { intervalMs: _, ...rest } = fields('victim'); return rest }, intervalMs: 300, newPublishersBurst: burst, newPublishersPerSecond: 0.001, addressGroup: ipOf },
    })
    const metrics = createMetrics()
    metrics.watchSwarm(victim.swarm)
    metrics.watchStore(victim.store)
    // Two identities from one network (127.0.0.2 plays one; loopback is grouped by IP here).
    const [first, second] = await Promise.all([0, 1].map(async () => await Attacker.start({ localAddress: '127.0.0.2' }))) as [Attacker, Attacker]
    try {
      const [toFirst, toSecond] = await Promise.all([first, second].map(async (a) => await a.connect(victim.address)))
      const flood = await fakeStatuses(burst + 5)
      const charged = async (pattern: RegExp): Promise<unknown> => await nextEvent(victim.swarm, 'peer:penalized', e => e.peer === first.peerId && pattern.test(e.detail))
      // The first identity introduces five past its own allowance: dropped, it is charged.
      const statuses = await toFirst?.newStream(STATUS_STREAM_PROTOCOL)
      let introduced = charged(/introduced/)
      statuses?.send(frame(StatusBatch.encode({ statuses: flood })))
      await introduced
      // The second, within its own allowance, finds its network's spent: five dropped, uncharged.
      // A heartbeat of a fake the victim holds, after them: once it shows, they were applied.
      const more = await fakeStatuses(5)
      const marker = await heartbeat(flood[0] as (typeof flood)[number], 60_000)
      const stream2 = await toSecond?.newStream(STATUS_STREAM_PROTOCOL)
      stream2?.send(frame(StatusBatch.encode({ statuses: more })))
      stream2?.send(frame(StatusBatch.encode({ statuses: [marker.status] })))
      await until('the marker applied', () => victim.swarm.fleetView().some(n => n.peerId === flood[0]?.peerId && n.sequence === marker.sequence), victim.swarm)
      expect(fakes(victim.swarm)).toBe(burst)
      // One ref batch a record past the allowance (the records are junk: the first is refused).
      const overdrawn = charged(/more than its allowance/)
      const refs = await toFirst?.newStream(REF_PROTOCOL)
      const junk = Array.from({ length: REF_RECORDS_BURST + 1 }, () => SignedRecord.encode({ record: Uint8Array.from(randomBytes(200)), signature: Uint8Array.from(randomBytes(64)) }))
      refs?.send(frame(RecordBatch.encode({ records: junk })))
      await overdrawn
      // A trusted publisher's four refs where two are kept.
      for (let i = 0; i < 4; i++) await gateway.swarm.publishRefs([{ ref: `registry.example.com/app:${i}`, bundleId: 'a'.repeat(64) }])
      const evicted = new Promise<void>((resolve) => { let n = 0; victim.store.on('ref:evicted', () => { if (++n === 2) resolve() }) })
      await connect(gateway, victim)
      await evicted

      let text = await metrics.text()
      expect(sample(text, 'shoal_fleet_statuses_dropped_total', 'allowance="neighbour"')).toBe(5)
      expect(sample(text, 'shoal_fleet_statuses_dropped_total', 'allowance="group"')).toBe(5)
      expect(sample(text, 'shoal_fleet_charges_total')).toBe(1)
      expect(sample(text, 'shoal_swarm_records_dropped_total', 'kind="ref",reason="over-allowance"')).toBe(1)
      expect(sample(text, 'shoal_swarm_records_dropped_total', 'kind="ref",reason="invalid"')).toBe(REF_RECORDS_BURST)
      expect(sample(text, 'shoal_swarm_record_allowance_charges_total', 'kind="ref"')).toBe(1)
      expect(sample(text, 'shoal_store_refs_evicted_total', 'bound="publisher"')).toBe(2)

      // A scrape counts what came since the one before, not everything again.
      introduced = charged(/introduced/)
      statuses?.send(frame(StatusBatch.encode({ statuses: await fakeStatuses(3) })))
      await introduced
      text = await metrics.text()
      expect(sample(text, 'shoal_fleet_statuses_dropped_total', 'allowance="neighbour"')).toBe(8)
      expect(sample(text, 'shoal_fleet_charges_total')).toBe(2)
      expect(sample(text, 'shoal_swarm_record_allowance_charges_total', 'kind="ref"')).toBe(1)
    } finally {
      await first.stop()
      await second.stop()
    }
  }, 60_000)
})
