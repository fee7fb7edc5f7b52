import { describe, expect, it, vi } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { receiveBatch } from '../../src/swarm/batch-stream.js'
import type { Connection, PrivateKey, Stream } from '@libp2p/interface'
import { createPeerKey, encodeStatusBody, peerIdOfKey, signStatus, STATUS_PROTOCOL, STATUS_STREAM_PROTOCOL, type NodeStatusFields, type Swarm } from '../../src/swarm/index.js'
import { signAbsence } from '../../src/swarm/status-absence.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { StatusBatch, StatusStamp } from '../../src/swarm/pb/swarm-status.pb.js'
import { Attacker, exchange } from './attacker.js'
import { connect, nextEvent, useSwarms, type TestNode } from './swarm-fixture.js'

const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()

const fields = (site: string): NodeStatusFields => ({
  version: '9.9.9', labels: { site }, complete: ['ab'.repeat(32)], completeCount: 1, partial: [], partialCount: 0,
  freeBytes: 1234, uploadRate: 0, downloadRate: 0, intervalMs: 60_000,
})

/** The first fleet-view state `probe` accepts: checked now, then on each status the swarm accepts. */
async function until<T> (what: string, probe: () => T | undefined, swarm: Swarm, timeoutMs = 20_000): Promise<T> {
  const found = probe()
  if (found !== undefined) return found
  let result: T | undefined
  await nextEvent(swarm, 'status:accepted', () => { result = probe(); return result !== undefined }, timeoutMs)
    .catch((err: unknown) => { throw new Error(`${what}: ${(err as Error).message}`) })
  return result as T
}

describe('the status gossip', () => {
  const { node } = useSwarms()
  /** A node publishing its own status every 300 ms: the victim of the hostile cases. */
  const statusNode = async (): Promise<Awaited<ReturnType<typeof node>>> =>
    await node({ status: { source: async () => { const { intervalMs: _, ...rest } = fields('v'); return rest }, intervalMs: 300 } })

  it('lists each node with its own word, and the neighbours\' neighbours', async () => {
    const source = (site: string) => async () => { const { intervalMs: _, ...rest } = fields(site); return rest }
    const a = await node({ status: { source: source('a'), intervalMs: 300 } })
    const b = await node({ status: { source: source('b'), intervalMs: 300 } })
    const c = await node({ status: { source: source('c'), intervalMs: 300 } })
    await connect(a, b)
    await connect(b, c)
    // a and c never connect: c's status reaches a through b.
    const seen = await until('a hears of c through b', () => a.swarm.fleetView().find(n => n.peerId === c.swarm.peerId), a.swarm)
    expect(seen.labels).toEqual({ site: 'c' })
    expect(seen.complete).toEqual(['ab'.repeat(32)])
    expect(seen.version).toBe('9.9.9')
    expect(seen.stale).toBe(false)
    const first = seen.sequence
    // Heartbeats keep coming (as refreshes once a holds c's body): the sequence moves on.
    await until('a newer heartbeat of c', () => (a.swarm.fleetView().find(n => n.peerId === c.swarm.peerId)?.sequence ?? 0) > first ? true : undefined, a.swarm)
    expect(a.swarm.fleetView().map(n => n.peerId).sort()).toEqual([a.swarm.peerId, b.swarm.peerId, c.swarm.peerId].sort())
  })

  it('refuses a status signed by another key than the node it names, and charges the sender', async () => {
    const victim = await statusNode()
    const attacker = await Attacker.start()
    try {
      const connection = await attacker.connect(victim.address)
      // A status the attacker relays for a third node, correctly signed by that node: accepted (relaying is gossip).
      const honestKey = await createPeerKey()
      const honestBody = encodeStatusBody(fields('honest'))
      const honest = await signStatus(honestKey, honestBody, Date.now())
      await exchange(connection, STATUS_PROTOCOL, frame(StatusBatch.encode({ statuses: [{ stamp: honest.stamp, signature: honest.signature, body: honestBody, ageMs: 0 }], refreshes: [] })))
      await until('the relayed honest status listed', () => victim.swarm.fleetView().find(n => n.peerId === peerIdOfKey(honestKey)), victim.swarm)

      // Now a status naming another node's key, signed by the attacker's own.
      const claimed = await createPeerKey()
      const forgerKey = await createPeerKey()
      const body = encodeStatusBody(fields('forged'))
      const signed = await signStatus(forgerKey, body, Date.now())
      const stamp = StatusStamp.decode(signed.stamp)
      const forgedStamp = StatusStamp.encode({ ...stamp, publisher: Uint8Array.from(publicKeyToProtobuf(claimed.publicKey)) })
      const penalized = nextEvent(victim.swarm, 'peer:penalized', e => e.peer === attacker.peerId)
      await exchange(connection, STATUS_PROTOCOL, frame(StatusBatch.encode({ statuses: [{ stamp: forgedStamp, signature: signed.signature, body, ageMs: 0 }], refreshes: [] })))
      const charge = await penalized
      expect(charge.kind).toBe('invalid-record')
      expect(charge.detail).toMatch(/signature does not match/)
      expect(victim.swarm.fleetView().some(n => n.peerId === peerIdOfKey(claimed))).toBe(false)
      expect(victim.swarm.fleetView().some(n => n.labels.site === 'forged')).toBe(false)
    } finally {
      await attacker.stop()
    }
  })

  it('takes a repeat of a held status without a charge, and still refuses the held stamp under another signature', async () => {
    const victim = await statusNode()
    const attacker = await Attacker.start()
    try {
      const connection = await attacker.connect(victim.address)
      const charges: string[] = []
      victim.swarm.on('peer:penalized', (e) => { if (e.peer === attacker.peerId) charges.push(e.detail) })
      const honestKey = await createPeerKey()
      const body = encodeStatusBody(fields('honest'))
      const honest = await signStatus(honestKey, body, Date.now())
      const status = { stamp: honest.stamp, signature: honest.signature, body, ageMs: 0 }
      await exchange(connection, STATUS_PROTOCOL, frame(StatusBatch.encode({ statuses: [status], refreshes: [] })))
      await until('the relayed status listed', () => victim.swarm.fleetView().find(n => n.peerId === peerIdOfKey(honestKey)), victim.swarm)
      // The same bytes again, as a second neighbour relaying them would send: nothing to charge.
      await exchange(connection, STATUS_PROTOCOL, frame(StatusBatch.encode({ statuses: [status], refreshes: [] })))
      // The held stamp and body with a signature that is not the publisher's: checked, refused, charged.
      const wrong = Uint8Array.from(honest.signature)
      wrong[0] = (wrong[0] ?? 0) ^ 0xff
      const penalized = nextEvent(victim.swarm, 'peer:penalized', e => e.peer === attacker.peerId)
      await exchange(connection, STATUS_PROTOCOL, frame(StatusBatch.encode({ statuses: [{ ...status, signature: wrong }], refreshes: [] })))
      expect((await penalized).detail).toMatch(/signature does not match/)
      expect(charges).toHaveLength(1)
      expect(victim.swarm.fleetView().find(n => n.peerId === peerIdOfKey(honestKey))?.sequence).toBe(Number(StatusStamp.decode(honest.stamp).sequence))
    } finally {
      await attacker.stop()
    }
  })

  it('does not charge a neighbour whose status stream is reset, and charges one that sends what does not decode', async () => {
    const victim = await statusNode()
    const peer = await Attacker.start()
    try {
      const connection = await peer.connect(victim.address)
      const charges: string[] = []
      victim.swarm.on('peer:penalized', (e) => { if (e.peer === peer.peerId) charges.push(e.detail) })
      // A loaded honest node's stream is reset before its batch is sent: no fault of the sender's.
      const reset = await connection.newStream(STATUS_PROTOCOL)
      reset.abort(new Error('reset under load'))
      // Then bytes that are no status batch: that is charged, and is the first charge.
      const penalized = nextEvent(victim.swarm, 'peer:penalized', e => e.peer === peer.peerId)
      await exchange(connection, STATUS_PROTOCOL, frame(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])))
      expect((await penalized).detail).toMatch(/does not decode/)
      expect(charges).toHaveLength(1)
    } finally {
      await peer.stop()
    }
  })

  it('sends a neighbour every batch as a frame on one long-lived stream', async () => {
    const victim = await statusNode()
    const peer = await Attacker.start({ identify: true })
    const streams: Stream[] = []
    let heartbeats = 0
    const wakes: Array<() => void> = []
    await peer.handle(STATUS_STREAM_PROTOCOL, (stream) => {
      streams.push(stream)
      readFrames(stream, {
        maxFrameBytes: 1024 * 1024,
        messageTimeoutMs: 10_000,
        onFrame: (f) => {
          const batch = StatusBatch.decode(f)
          if (batch.statuses.length + batch.refreshes.length > 0) heartbeats++
          for (const wake of wakes.splice(0)) wake()
        },
      })
    })
    try {
      await peer.connect(victim.address)
      // The victim signs every 300 ms and tells each neighbour at once.
      await vi.waitFor(() => { expect(heartbeats).toBeGreaterThanOrEqual(4) }, { timeout: 20_000, interval: 50 })
      expect(streams).toHaveLength(1)
      expect(streams[0]?.status).toBe('open')
    } finally {
      await peer.stop()
    }
  })

  it('applies batches from a neighbour\'s long-lived stream as they come, and charges one that does not decode on it', async () => {
    const victim = await statusNode()
    const peer = await Attacker.start()
    try {
      const connection = await peer.connect(victim.address)
      const stream = await connection.newStream(STATUS_STREAM_PROTOCOL)
      for (const site of ['w1', 'w2']) {
        const key = await createPeerKey()
        const body = encodeStatusBody(fields(site))
        const signed = await signStatus(key, body, Date.now())
        stream.send(frame(StatusBatch.encode({ statuses: [{ stamp: signed.stamp, signature: signed.signature, body, ageMs: 0 }] })))
        await until(`${site} held`, () => victim.swarm.fleetView().find(n => n.peerId === peerIdOfKey(key)), victim.swarm)
      }
      expect(stream.status).toBe('open')
      const penalized = nextEvent(victim.swarm, 'peer:penalized', e => e.peer === peer.peerId)
      stream.send(frame(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])))
      expect((await penalized).detail).toMatch(/does not decode/)
    } finally {
      await peer.stop()
    }
  })

  // Heartbeats 60 s apart: silence alone would mark a node stale after 4 minutes, so a node
  // marked stale within seconds was marked by its neighbours' absence notices.
  const slow = (site: string) => ({
    source: async () => { const { intervalMs: _, ...rest } = fields(site); return rest },
    intervalMs: 60_000, absenceGraceMs: 500, witnessDelayMs: 300,
  })

  it('marks a stopped node stale from its neighbours\' absence notices, long before its heartbeats are missed', async () => {
    const a = await node({ status: slow('a') })
    const b = await node({ status: slow('b') })
    const c = await node({ status: slow('c') })
    await connect(a, b)
    await connect(a, c)
    await connect(b, c)
    for (const [observer, other] of [[a, c], [b, c], [a, b]] as const) {
      await until('the view lists its neighbour', () => observer.swarm.fleetView().find(n => n.peerId === other.swarm.peerId), observer.swarm)
    }
    const noticed = Promise.all([a, b].map(async observer => await nextEvent(observer.swarm, 'status:absence', e => e.subject === c.swarm.peerId)))
    await c.swarm.stop()
    const notices = await noticed
    // Each observer heard a witness (itself or the other), who dialled c and found nobody.
    for (const notice of notices) expect([a.swarm.peerId, b.swarm.peerId]).toContain(notice.witness)
    for (const observer of [a, b]) {
      await vi.waitFor(() => { expect(observer.swarm.fleetView().find(n => n.peerId === c.swarm.peerId)?.stale).toBe(true) }, { timeout: 15_000, interval: 100 })
      const row = observer.swarm.fleetView().find(n => n.peerId === c.swarm.peerId)
      expect(row?.lostBy).toBeGreaterThan(0)
      // Well inside the 4 silent periods (4 minutes) that were the only way before.
      expect(row?.lastSeenMs).toBeLessThan(4 * 60_000)
    }
    // The nodes still running are not marked.
    expect(a.swarm.fleetView().find(n => n.peerId === b.swarm.peerId)?.stale).toBe(false)
    expect(b.swarm.fleetView().find(n => n.peerId === a.swarm.peerId)?.stale).toBe(false)
  })

  /** a and b, and an attacker connected to a that relays a witness's status: the witness a then knows. */
  async function accusable (): Promise<{ a: TestNode, b: TestNode, bSequence: number, attacker: Attacker, notify: (signature: Uint8Array<ArrayBuffer>) => Promise<void>, witnessKey: PrivateKey }> {
    const a = await node({ status: slow('a') })
    const b = await node({ status: slow('b') })
    await connect(a, b)
    const heldB = await until('a holds b', () => a.swarm.fleetView().find(n => n.peerId === b.swarm.peerId), a.swarm)
    const attacker = await Attacker.start()
    const connection = await attacker.connect(a.address)
    const witnessKey = await relayWitness(connection, a.swarm)
    const notify = async (signature: Uint8Array<ArrayBuffer>): Promise<void> => {
      await exchange(connection, STATUS_PROTOCOL, frame(StatusBatch.encode({
        notices: [{ witnessTail: tail(publicKeyToProtobuf(witnessKey.publicKey)), subjectTail: tail(publicKeyFromPeerId(b.swarm.peerId)), subjectSequence: BigInt(heldB.sequence), signature, ageMs: 0 }],
      })))
    }
    return { a, b, bSequence: heldB.sequence, attacker, notify, witnessKey }
  }

  it('lets a node that is alive refute a notice that it was lost, with a heartbeat long before its period', async () => {
    const { a, b, bSequence, attacker, notify, witnessKey } = await accusable()
    try {
      // The witness says it lost b.
      const signature = await signAbsence(witnessKey, publicKeyFromPeerId(b.swarm.peerId), bSequence)
      const absence = nextEvent(a.swarm, 'status:absence', e => e.subject === b.swarm.peerId)
      const refuted = nextEvent(a.swarm, 'status:accepted', e => e.publisher === b.swarm.peerId && e.sequence > bSequence)
      await notify(signature)
      expect((await absence).witness).toBe(peerIdOfKey(witnessKey))
      // a passed the notice to b, b answered with a heartbeat a minute early, and a cleared the mark.
      await refuted
      const row = a.swarm.fleetView().find(n => n.peerId === b.swarm.peerId)
      expect(row?.lostBy).toBe(0)
      expect(row?.stale).toBe(false)
    } finally {
      await attacker.stop()
    }
  })

  it('charges a neighbour that relays an absence notice its witness did not sign', async () => {
    const { a, b, bSequence, attacker, notify } = await accusable()
    try {
      // Signed by another key than the witness it names.
      const forged = await signAbsence(await createPeerKey(), publicKeyFromPeerId(b.swarm.peerId), bSequence)
      const penalized = nextEvent(a.swarm, 'peer:penalized', e => e.peer === attacker.peerId)
      await notify(forged)
      const charge = await penalized
      expect(charge.kind).toBe('invalid-record')
      expect(charge.detail).toMatch(/absence notice/)
      expect(a.swarm.fleetView().find(n => n.peerId === b.swarm.peerId)?.lostBy).toBe(0)
    } finally {
      await attacker.stop()
    }
  })

  it('gives a joining node the fleet\'s view once: a new neighbour sends its digest, and answers ours with only what we lack', async () => {
    const a = await node({ status: slow('a') })
    const b = await node({ status: slow('b') })
    const c = await node({ status: slow('c') })
    await connect(a, b)
    await connect(b, c)
    await connect(a, c)
    for (const observer of [a, b]) await until('a full view', () => observer.swarm.fleetView().length === 3 ? true : undefined, observer.swarm)
    // The joiner: a bare node that speaks the status protocol by hand and keeps every batch it gets.
    const joiner = await Attacker.start({ identify: true })
    const got: Array<{ from: string, batch: StatusBatch }> = []
    const waiting: Array<() => void> = []
    await joiner.handle(STATUS_PROTOCOL, (stream, connection) => {
      void receiveBatch(stream, { maxBytes: 1024 * 1024, decode: (f) => StatusBatch.decode(f) }).then(batch => {
        got.push({ from: connection.remotePeer.toString(), batch })
        for (const wake of waiting.splice(0)) wake()
      })
    })
    const batchFrom = async (peer: string, match: (b: StatusBatch) => boolean): Promise<StatusBatch> => {
      for (;;) {
        const found = got.find(g => g.from === peer && match(g.batch))
        if (found !== undefined) return found.batch
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => { reject(new Error(`no such status batch from ${peer}; got ${JSON.stringify(got.map(g => [g.from.slice(-6), g.batch.statuses.length, g.batch.refreshes.length, g.batch.digest?.sequences.length, g.batch.answersDigest]))}`)) }, 20_000)
          waiting.push(() => { clearTimeout(timer); resolve() })
        })
      }
    }
    try {
      const toA = await joiner.connect(a.address)
      const toB = await joiner.connect(b.address)
      // Each neighbour opens with its digest, not its whole view.
      for (const n of [a, b]) {
        const opening = await batchFrom(n.swarm.peerId, x => x.digest !== undefined)
        expect(opening.digest?.sequences).toHaveLength(3)
        expect(opening.statuses).toHaveLength(0)
      }
      // Our digest names nothing: a answers with everything it holds.
      await exchange(toA, STATUS_PROTOCOL, frame(StatusBatch.encode({ digest: { tails: new Uint8Array(0), bodyPrefixes: new Uint8Array(0), sequences: [] } })))
      await batchFrom(a.swarm.peerId, x => x.answersDigest)
      const view = got.filter(g => g.from === a.swarm.peerId).flatMap(g => g.batch.statuses)
      expect(view.map(st => peerIdOfKeyBytes(StatusStamp.decode(st.stamp).publisher)).sort()).toEqual([a, b, c].map(n => n.swarm.peerId).sort())
      // Now it names all three: b answers, and sends none of them again.
      const stamps = view.map(st => StatusStamp.decode(st.stamp))
      await exchange(toB, STATUS_PROTOCOL, frame(StatusBatch.encode({
        digest: {
          tails: Uint8Array.from(Buffer.concat(stamps.map(st => st.publisher.subarray(-8)))),
          bodyPrefixes: Uint8Array.from(Buffer.concat(stamps.map(st => st.bodyHash.subarray(0, 4)))),
          sequences: stamps.map(st => st.sequence),
        },
      })))
      await batchFrom(b.swarm.peerId, x => x.answersDigest)
      expect(got.filter(g => g.from === b.swarm.peerId).flatMap(g => g.batch.statuses)).toHaveLength(0)
      // Asking a again at once gets an empty answer: a digest cannot make a node send its view over and over.
      const before = got.length
      await exchange(toA, STATUS_PROTOCOL, frame(StatusBatch.encode({ digest: { tails: new Uint8Array(0), bodyPrefixes: new Uint8Array(0), sequences: [] } })))
      const again = await batchFrom(a.swarm.peerId, x => x.answersDigest && got.findIndex(g => g.batch === x) >= before)
      expect(again.statuses).toHaveLength(0)
    } finally {
      await joiner.stop()
    }
  })
})

/** A fresh node's status, relayed to `swarm` over `connection`: a witness the swarm knows of. */
async function relayWitness (connection: Connection, swarm: Swarm): Promise<PrivateKey> {
  const witnessKey = await createPeerKey()
  const witnessBody = encodeStatusBody(fields('w'))
  const witness = await signStatus(witnessKey, witnessBody, Date.now())
  await exchange(connection, STATUS_PROTOCOL, frame(StatusBatch.encode({ statuses: [{ stamp: witness.stamp, signature: witness.signature, body: witnessBody, ageMs: 0 }] })))
  await until('the witness held', () => swarm.fleetView().find(n => n.peerId === peerIdOfKey(witnessKey)), swarm)
  return witnessKey
}

function peerIdOfKeyBytes (key: Uint8Array): string {
  return peerIdFromPublicKey(publicKeyFromProtobuf(key)).toString()
}

function tail (key: Uint8Array): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(key.subarray(-8))
}

/** An Ed25519 peer ID embeds its public key: the protobuf-encoded key, as statuses carry it. */
function publicKeyFromPeerId (peer: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(publicKeyToProtobuf(peerIdFromString(peer).publicKey as NonNullable<ReturnType<typeof peerIdFromString>['publicKey']>))
}
