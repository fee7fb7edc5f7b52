import { describe, expect, it } from 'vitest'
import { createPeerKey, encodeStatusBody, peerIdOfKey, signStatus, StatusBook, statusIntervalMs, statusLimits, type NodeStatusFields } from '../../src/swarm/index.js'
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { HeldStatus } from '../../src/swarm/status-book.js'
import { summarizeFleet, type FleetNodeInfo } from '../../src/http/index.js'

const fields = (labels: Record<string, string>, complete: string[] = []): NodeStatusFields => ({
  version: '1.0.0', labels, complete, completeCount: complete.length, partial: [], partialCount: 0, freeBytes: 1, uploadRate: 0, downloadRate: 0, intervalMs: 1000,
})

async function held (at: number, sequence: number, f = fields({})): Promise<HeldStatus> {
  const key = await createPeerKey()
  const body = encodeStatusBody(f)
  const signed = await signStatus(key, body, sequence)
  return { publisher: peerIdOfKey(key), publisherKey: Uint8Array.from(publicKeyToProtobuf(key.publicKey)), sequence, bodyHash: signed.bodyHash, fields: f, body, stamp: signed.stamp, signature: signed.signature, heardAt: at }
}

describe('the status book', () => {
  it('marks a node stale after 4 of its periods of silence and forgets it after 16', async () => {
    let now = 0
    const book = new StatusBook('self', () => now)
    const node = await held(0, 1)
    expect(book.accept(node)).toBe('accepted')
    now = statusLimits.STALE_AFTER_INTERVALS * 1000
    expect(book.view()[0]?.stale).toBe(false)
    now += 1
    expect(book.view()[0]?.stale).toBe(true)
    now = statusLimits.DROP_AFTER_INTERVALS * 1000 + 1
    expect(book.view()).toEqual([])
  })

  it('marks a node stale a grace after a witness reports losing it, until the node speaks again', async () => {
    let now = 100_000
    const book = new StatusBook('self', () => now, 100, 2_000)
    const subject = await held(now, 50_000)
    const witness = await held(now, 50_000)
    const other = await held(now, 50_000)
    for (const s of [subject, witness, other]) book.accept(s)
    const w = (by: HeldStatus, signedAt: number): { witness: string, witnessKey: Uint8Array<ArrayBuffer>, signature: Uint8Array<ArrayBuffer>, signedAt: number } =>
      ({ witness: by.publisher, witnessKey: by.publisherKey, signature: new Uint8Array(64), signedAt })
    expect(book.absenceVerdict(subject.publisher, 'a stranger', 50_000)).toBe('unknown')
    expect(book.absenceVerdict(subject.publisher, subject.publisher, 50_000)).toBe('unknown')
    expect(book.absenceVerdict(subject.publisher, witness.publisher, 49_999)).toBe('outdated')
    expect(book.absenceVerdict(subject.publisher, witness.publisher, 50_000)).toBe('new')
    book.addAbsence(subject.publisher, 50_000, w(witness, now))
    expect(book.absenceVerdict(subject.publisher, witness.publisher, 50_000)).toBe('known')
    const row = (): ReturnType<StatusBook['view']>[number] | undefined => book.view().find(n => n.peerId === subject.publisher)
    expect(row()?.lostBy).toBe(1)
    // Within the grace the node may still refute it: not stale yet, though its heartbeats are long due.
    now += 1_999
    expect(row()?.stale).toBe(false)
    now += 1
    expect(row()?.stale).toBe(true)
    // A heartbeat past the sequence the witness named refutes it, however soon after the last.
    expect(book.accept({ ...subject, sequence: 50_001, heardAt: now })).toBe('accepted')
    expect(row()?.stale).toBe(false)
    expect(row()?.lostBy).toBe(0)
    // A notice about a later sequence than held (it overtook the heartbeat): the heartbeat it names does not clear it.
    book.addAbsence(subject.publisher, 60_000, w(other, now))
    expect(book.accept({ ...subject, sequence: 60_000, heardAt: now })).toBe('accepted')
    expect(row()?.lostBy).toBe(1)
    now += 2_000
    expect(row()?.stale).toBe(true)
  })

  it('keeps at most a few witnesses per node and sequence', async () => {
    const book = new StatusBook('self', () => 0, 100, 1_000)
    const subject = await held(0, 10)
    book.accept(subject)
    for (let i = 0; i < statusLimits.MAX_ABSENCE_WITNESSES; i++) {
      const witness = await held(0, 10)
      book.accept(witness)
      expect(book.absenceVerdict(subject.publisher, witness.publisher, 10)).toBe('new')
      book.addAbsence(subject.publisher, 10, { witness: witness.publisher, witnessKey: witness.publisherKey, signature: new Uint8Array(64), signedAt: 0 })
    }
    const late = await held(0, 10)
    book.accept(late)
    expect(book.absenceVerdict(subject.publisher, late.publisher, 10)).toBe('full')
    // A later sequence starts a new count.
    expect(book.absenceVerdict(subject.publisher, late.publisher, 11)).toBe('new')
  })

  it('keeps only newer heartbeats, and none closer than half the publisher\'s period', async () => {
    const book = new StatusBook('self', () => 0)
    const node = await held(0, 10_000)
    book.accept(node)
    expect(book.accept({ ...node, sequence: 9_000 })).toBe('older')
    expect(book.accept({ ...node, sequence: 10_100 })).toBe('too-soon')
    expect(book.accept({ ...node, sequence: 10_600 })).toBe('accepted')
  })

  it('forgets the longest silent node when full', async () => {
    let now = 0
    const book = new StatusBook('self', () => now, 2)
    const a = await held(0, 1)
    const b = await held(5, 1)
    book.accept(a)
    book.accept(b)
    now = 10
    book.accept(await held(10, 1))
    expect(book.get(a.publisher)).toBeUndefined()
    expect(book.get(b.publisher)).toBeDefined()
    expect(book.size).toBe(2)
  })

  it('when full of one neighbour\'s introductions, never evicts a neighbour or a node heard through two before them, and a charged neighbour\'s go first', async () => {
    let now = 0
    const book = new StatusBook('self', () => now, 8)
    // The longest silent: a neighbour (its status came from itself), one that was a neighbour
    // when it connected, and one heard through two neighbours.
    const neighbour = await held(0, 1)
    const former = await held(1, 1)
    const twice = await held(2, 1)
    book.accept(neighbour, neighbour.publisher)
    book.accept(former, 'honest')
    book.markDirect(former.publisher)
    book.accept(twice, 'honest')
    book.accept({ ...twice, heardAt: 3 }, 'other')
    // One honest node introduced by a single honest neighbour, then the stranger's flood.
    const single = await held(4, 1)
    book.accept(single, 'honest')
    const flood = await Promise.all(Array.from({ length: 12 }, async (_, i) => await held(10 + i, 1)))
    for (const fake of flood) {
      now = fake.heardAt
      expect(book.accept(fake, 'stranger')).toBe('accepted')
    }
    expect(book.size).toBe(8)
    for (const kept of [neighbour, former, twice]) expect(book.get(kept.publisher)).toBeDefined()
    // The single-source nodes went by silence: the honest one first (the oldest), then the stranger's oldest.
    expect(book.get(single.publisher)).toBeUndefined()
    expect(flood.filter(f => book.get(f.publisher) !== undefined)).toHaveLength(5)
    // Once the stranger is charged, its introductions go before an honest neighbour's, however
    // long silent that one's (relayed with its age) and however recent the fakes.
    const late = await held(5, 1)
    const honestNew = await held(31, 1)
    now = 30
    book.accept(late, 'honest')
    book.distrust('stranger')
    now = 31
    book.accept(honestNew, 'honest')
    expect(book.get(late.publisher)).toBeDefined()
    expect(book.get(honestNew.publisher)).toBeDefined()
    expect(flood.filter(f => book.get(f.publisher) !== undefined)).toHaveLength(3)
    for (const kept of [neighbour, former, twice]) expect(book.get(kept.publisher)).toBeDefined()
  })
})

describe('the adaptive heartbeat period', () => {
  it('stays at the configured period in a small fleet and lengthens with the fleet', () => {
    expect(statusIntervalMs(3, 30_000)).toBe(30_000)
    expect(statusIntervalMs(1000, 30_000)).toBeGreaterThan(statusIntervalMs(100, 30_000))
    // Each node's share of everyone's refreshes fits the budget.
    for (const n of [1000, 5000]) {
      const perNode = n * statusLimits.STATUS_FANOUT * statusLimits.STATUS_REFRESH_WIRE_BYTES / (statusIntervalMs(n) / 1000)
      expect(perNode).toBeLessThanOrEqual(statusLimits.STATUS_BUDGET_BYTES_PER_SECOND)
    }
  })
})

describe('the fleet summary', () => {
  const id1 = 'a'.repeat(64)
  const node = (peerId: string, labels: Record<string, string>, complete: string[], stale = false): FleetNodeInfo => ({
    peerId, self: false, stale, lastSeenMs: 0, sequence: 1, ...fields(labels, complete),
  })
  it('counts a preheat\'s spread among the nodes its selector picks, and every node otherwise', () => {
    const nodes = [node('p1', { site: 'a' }, [id1]), node('p2', { site: 'a' }, []), node('p3', { site: 'b' }, [id1], true)]
    expect(summarizeFleet(nodes, []).bundles).toEqual([{ id: id1, refs: [], pinned: false, complete: 2, partial: 0, total: 3 }])
    const view = summarizeFleet(nodes, [], { preheats: [{ bundleId: id1, selector: 'site=a', state: 'pulling' }] })
    expect(view.bundles[0]).toMatchObject({ complete: 1, total: 2, preheat: { selector: 'site=a' } })
    expect(view.stale).toBe(1)
    // Stale nodes first, so a cut table still shows them.
    expect(summarizeFleet(nodes, [], { maxNodes: 1 })).toMatchObject({ truncated: true, nodes: [{ peerId: 'p3' }] })
  })
})
