import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { openStore, type Store } from '../../src/store/index.js'
import { createPeerKey, peerIdOfKey, REF_PROTOCOL } from '../../src/swarm/index.js'
import type { ShoalNode } from '../../src/swarm/libp2p-node.js'
import { MAX_REF_BATCH_BYTES, REF_RECORDS_BURST, RefSync } from '../../src/swarm/ref-protocol.js'
import type { RecordSyncInit } from '../../src/swarm/record-sync.js'
import type { VerifiedRefRecord } from '../../src/swarm/ref-record.js'
import { waitWhile, wakeOrThrow, Wakers } from '../../src/wait/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'
import { useBareNodes } from './bare-nodes.js'

const tempDir = useTempDirs()
const { start } = useBareNodes()
const ID_A = 'a'.repeat(64)
const ID_B = 'b'.repeat(64)
const REF = 'registry.example.com/team/app:1.0'
const OTHER_REF = 'registry.example.com/team/app:2.0'
const THIRD_REF = 'registry.example.com/team/app:3.0'

/** A node with its ref sync over a real store; `refuses` says, per inbound ref stream, whether the node aborts it instead of handing it to the sync. */
interface SyncNode {
  node: ShoalNode
  store: Store
  sync: RefSync
  warnings: string[]
  debugs: string[]
  /** Woken at each line logged and each record the sync hands the store. */
  logged: Wakers
  /** Inbound ref streams that reached the sync's handler. */
  taken: number
}

const opened: SyncNode[] = []
afterEach(async () => {
  for (const { sync, store } of opened.splice(0)) {
    sync.stop()
    await store.close()
  }
})

/** `as`: the identity and data directory of a node that ran before (a restart). */
async function syncNode (trusted: string, init: RecordSyncInit = {}, refuses: () => boolean = () => false, as: { privateKey?: PrivateKey, dir?: string } = {}): Promise<SyncNode> {
  const node = await start(as.privateKey === undefined ? {} : { privateKey: as.privateKey })
  const store = await openStore({ dir: as.dir ?? await tempDir() })
  const warnings: string[] = []
  const debugs: string[] = []
  const logged = new Wakers()
  // Woken at each record the sync hands the store too (news or not): what a test waits on to
  // know a batch was read.
  const kept = {
    acceptRefRecord: async (update: VerifiedRefRecord) => {
      const verdict = await store.acceptRefRecord(update)
      logged.wakeAll()
      return verdict
    },
    refRecords: async () => await store.refRecords(),
  }
  const sync = new RefSync(kept, {
    trusted: new Set([trusted]),
    connections: () => node.getConnections(),
    log: {
      debug: (msg) => { debugs.push(msg); logged.wakeAll() },
      warn: (msg) => { warnings.push(msg); logged.wakeAll() },
    },
  }, init)
  const synced: SyncNode = { node, store, sync, warnings, debugs, logged, taken: 0 }
  // The handler the sync registers, behind one that aborts the streams the test refuses.
  const gated: Pick<Libp2p, 'handle' | 'register'> = {
    handle: async (protocol, handler, options) => {
      await node.handle(protocol, (stream, connection) => {
        if (refuses()) {
          // Once the whole batch is in, as a receiver that failed on it would: the sender's
          // side is closed by then, and only the receiver's answer can tell it the batch was lost.
          stream.addEventListener('remoteCloseWrite', () => { stream.abort(new Error('refused by the test')) }, { once: true })
          return
        }
        synced.taken++
        return handler(stream, connection)
      }, options)
    },
    register: async (protocol, topology) => await node.register(protocol, topology),
  }
  await sync.attach(gated)
  opened.push(synced)
  return synced
}

/** Resolves when `store` accepts a record for `ref`; subscribe before what should cause it. */
function recordArrives (store: Store, ref: string): Promise<void> {
  const arrived = wakeOrThrow(wake => {
    const listener = (detail: { ref: string }): void => { if (detail.ref === ref) wake() }
    store.on('ref:updated', listener)
    return () => { store.off('ref:updated', listener) }
  }, { timeoutMs: 20_000, timeoutError: () => new Error(`no record for ${ref} arrived within 20 s`) })
  // Awaited by the test unless an assertion before fails it: no unhandled rejection then.
  arrived.catch(() => {})
  return arrived
}

async function dial (from: SyncNode, to: SyncNode): Promise<void> {
  const address = to.node.getMultiaddrs()[0]
  if (address === undefined) throw new Error('the node listens nowhere')
  await from.node.dial(address)
}

/** Counts down: true (refuse) for the first `n` calls. */
function firstStreams (n: number): () => boolean {
  let left = n
  return () => left-- > 0
}

describe('record sync to a neighbour that did not take a batch', () => {
  it('sends the record again on the same connection when the neighbour aborted the stream that carried it', async () => {
    const key = await createPeerKey()
    const publisher = peerIdOfKey(key)
    let refuseNext = false
    const sender = await syncNode(publisher)
    const receiver = await syncNode(publisher, {}, () => {
      const refuse = refuseNext
      refuseNext = false
      return refuse
    })
    // A record held before they meet, so the batch sent on connect is over before the test goes on.
    await sender.sync.publish(key, [{ ref: OTHER_REF, bundleId: ID_B }])
    const metRecord = recordArrives(receiver.store, OTHER_REF)
    await dial(sender, receiver)
    await metRecord
    expect(receiver.taken).toBe(1)

    refuseNext = true
    const arrived = recordArrives(receiver.store, REF)
    await sender.sync.publish(key, [{ ref: REF, bundleId: ID_A }])
    // The broadcast's stream was aborted by the receiver: a resync is owed, not given up.
    expect(sender.sync.pendingResyncs()).toBe(1)
    expect(receiver.taken).toBe(1)

    await arrived
    expect((await receiver.store.getRef(REF))?.bundleId).toBe(ID_A)
    expect(receiver.taken).toBe(2)
    expect(sender.node.getConnections()).toHaveLength(1)
    // The receiver's answer reaches the sender after the record landed: then nothing is owed.
    const resynced = (): boolean => sender.debugs.some(line => line.startsWith('sent every ref record again'))
    expect(await waitWhile(() => !resynced(), sender.logged.subscribe, { timeoutMs: 20_000 })).toBe(true)
    expect(sender.sync.pendingResyncs()).toBe(0)
    expect(sender.warnings).toEqual([])
  })

  it('sends everything held again when the batch sent on connect was not taken', async () => {
    const key = await createPeerKey()
    const publisher = peerIdOfKey(key)
    const sender = await syncNode(publisher)
    const receiver = await syncNode(publisher, {}, firstStreams(1))
    // Held before the two meet: it travels in the batch sent on connect.
    await sender.sync.publish(key, [{ ref: REF, bundleId: ID_A }])
    const arrived = recordArrives(receiver.store, REF)

    await dial(sender, receiver)

    await arrived
    expect((await receiver.store.getRef(REF))?.bundleId).toBe(ID_A)
    expect(receiver.taken).toBe(1)
  })

  it('waits with a resync until the neighbour\'s allowance takes everything held, so it is not charged for it', async () => {
    const key = await createPeerKey()
    const publisher = peerIdOfKey(key)
    const charges: string[] = []
    let refuseNext = false
    const sender = await syncNode(publisher)
    const receiver = await syncNode(publisher, { onInvalid: (_peer, why) => { charges.push(why) } }, () => {
      const refuse = refuseNext
      refuseNext = false
      return refuse
    })
    // Most of the receiver's burst goes on the batch sent on connect; what is left refills at
    // REF_RECORDS_PER_SECOND, several seconds short of the whole set again.
    const held = Math.floor(REF_RECORDS_BURST * 0.8)
    await sender.sync.publish(key, Array.from({ length: held }, (_, i) => ({ ref: `${OTHER_REF}-${i}`, bundleId: ID_B })))
    await dial(sender, receiver)
    // In one batch or several (a sender just started paces from an empty model of the allowance).
    await waitWhile(() => receiver.sync.stats().verified < held, receiver.logged.subscribe, { timeoutMs: 30_000 })
    const taken = receiver.taken

    refuseNext = true
    const arrived = recordArrives(receiver.store, REF)
    await sender.sync.publish(key, [{ ref: REF, bundleId: ID_A }])
    expect(sender.sync.pendingResyncs()).toBe(1)
    await arrived

    expect(receiver.sync.stats().overAllowance).toBe(0)
    expect(charges).toEqual([])
    // The refused batch is not taken; the resync's first batch, newest first, carried the ref.
    expect(receiver.taken).toBe(taken + 1)
  })

  it('owes one resync per neighbour however many batches failed, and it carries what is held then', async () => {
    const key = await createPeerKey()
    const publisher = peerIdOfKey(key)
    let refusing = false
    // The first try well after the three failures below (seconds apart at load 20), so it
    // carries all three.
    const sender = await syncNode(publisher, { resync: { firstDelayMs: 5_000 } })
    const receiver = await syncNode(publisher, {}, () => refusing)
    // A record held before they meet, so the batch sent on connect is over before the failures:
    // under load the connect batch (sent once identify ran) came after the three publishes and
    // was taken beside the resync.
    await sender.sync.publish(key, [{ ref: THIRD_REF, bundleId: ID_B }])
    const met = recordArrives(receiver.store, THIRD_REF)
    await dial(sender, receiver)
    await met
    const taken = receiver.taken
    refusing = true

    await sender.sync.publish(key, [{ ref: REF, bundleId: ID_A }])
    await sender.sync.publish(key, [{ ref: OTHER_REF, bundleId: ID_A }])
    // A newer record for the first ref replaces the one that failed.
    await sender.sync.publish(key, [{ ref: REF, bundleId: ID_B }])
    expect(sender.sync.pendingResyncs()).toBe(1)

    const both = Promise.all([recordArrives(receiver.store, REF), recordArrives(receiver.store, OTHER_REF)])
    refusing = false
    await both
    // One batch carried both refs, the first at its newest.
    expect(receiver.taken).toBe(taken + 1)
    expect((await receiver.store.getRef(REF))?.bundleId).toBe(ID_B)
    expect((await receiver.store.getRef(OTHER_REF))?.bundleId).toBe(ID_A)
    expect(await receiver.store.revisions(REF)).toHaveLength(1)
  })

  it('owes nothing to a neighbour that does not speak the protocol', async () => {
    const key = await createPeerKey()
    const publisher = peerIdOfKey(key)
    const sender = await syncNode(publisher)
    // No record sync at all: the stream's protocol is refused in negotiation.
    const stranger = await start()
    const address = stranger.getMultiaddrs()[0]
    if (address === undefined) throw new Error('the node listens nowhere')
    await sender.node.dial(address)

    await sender.sync.publish(key, [{ ref: REF, bundleId: ID_A }])
    expect(sender.sync.pendingResyncs()).toBe(0)
    expect(sender.debugs).toContain('a neighbour does not take ref records')
  })

  it('drops the resync owed to a neighbour that disconnects, and every one when it stops', async () => {
    const key = await createPeerKey()
    const publisher = peerIdOfKey(key)
    // A first try far away: only the disconnect can end the resync during the test.
    const sender = await syncNode(publisher, { resync: { firstDelayMs: 600_000 } })
    const receiver = await syncNode(publisher, {}, () => true)
    const third = await syncNode(publisher, {}, () => true)
    await dial(sender, receiver)
    await dial(sender, third)

    await sender.sync.publish(key, [{ ref: REF, bundleId: ID_A }])
    expect(sender.sync.pendingResyncs()).toBe(2)

    // The sync's topology hears of the disconnect before this one, registered after it.
    const gone = receiver.node.peerId.toString()
    const left = wakeOrThrow(wake => {
      void sender.node.register(REF_PROTOCOL, { onDisconnect: (peer) => { if (peer.toString() === gone) wake() } })
      return () => {}
    }, { timeoutMs: 20_000, timeoutError: () => new Error('the sender never heard that the receiver left') })
    await sender.node.hangUp(receiver.node.peerId)
    await left
    expect(sender.sync.pendingResyncs()).toBe(1)

    sender.sync.stop()
    expect(sender.sync.pendingResyncs()).toBe(0)
  })

  it('gives up after its tries with a warning that says when the records will come', async () => {
    const key = await createPeerKey()
    const publisher = peerIdOfKey(key)
    const sender = await syncNode(publisher, { resync: { firstDelayMs: 10, maxTries: 2 } })
    const receiver = await syncNode(publisher, {}, () => true)
    await dial(sender, receiver)

    await sender.sync.publish(key, [{ ref: REF, bundleId: ID_A }])
    expect(await waitWhile(() => sender.warnings.length === 0, sender.logged.subscribe, { timeoutMs: 20_000 })).toBe(true)

    expect(sender.warnings).toHaveLength(1)
    expect(sender.warnings[0]).toMatch(/after 2 tries; it is sent them all when it next connects/)
    expect(sender.sync.pendingResyncs()).toBe(0)
    expect(await receiver.store.getRef(REF)).toBeUndefined()
  })
})

describe('record sync within the neighbour\'s allowance', () => {
  /** A sender and a receiver that both tell every charge they lay on the other. */
  async function chargedPair (publisher: string): Promise<{ sender: SyncNode, receiver: SyncNode, charges: string[] }> {
    const charges: string[] = []
    const sender = await syncNode(publisher, { onInvalid: (_peer, why) => { charges.push(`receiver charged: ${why}`) } })
    const receiver = await syncNode(publisher, { onInvalid: (_peer, why) => { charges.push(`sender charged: ${why}`) } })
    return { sender, receiver, charges }
  }

  /** Until `node` has read `count` records from trusted publishers (verified, news or not); false if it never does. */
  async function readRecords (node: SyncNode, count: number): Promise<boolean> {
    return await waitWhile(() => node.sync.stats().verified < count, node.logged.subscribe, { timeoutMs: 30_000 })
  }

  it('hands a new neighbour more records than its burst, newest first, in batches it takes without a charge', async () => {
    const key = await createPeerKey()
    const { sender, receiver, charges } = await chargedPair(peerIdOfKey(key))
    const held = REF_RECORDS_BURST + 100
    await sender.sync.publish(key, Array.from({ length: held }, (_, i) => ({ ref: `${OTHER_REF}-${i}`, bundleId: ID_B })))
    // Published last, so newest: it goes in the first batch (the store lists it last, by name).
    const newest = `${OTHER_REF}-newest`
    await sender.sync.publish(key, [{ ref: newest, bundleId: ID_A }])
    const first = recordArrives(receiver.store, newest)
    await dial(sender, receiver)
    await first
    expect((await receiver.store.refNames()).length).toBeLessThan(held + 1)

    expect(await readRecords(receiver, held + 1)).toBe(true)
    expect((await receiver.store.refNames()).length).toBe(held + 1)
    expect(receiver.sync.stats().overAllowance).toBe(0)
    expect(charges).toEqual([])
  })

  it('splits what it holds so no batch is larger than the receiver reads', async () => {
    const key = await createPeerKey()
    const { sender, receiver, charges } = await chargedPair(peerIdOfKey(key))
    // Long names (a ref may have 512 characters): fewer records than the burst, more bytes than MAX_REF_BATCH_BYTES.
    const held = 440
    const long = 'x'.repeat(440)
    await sender.sync.publish(key, Array.from({ length: held }, (_, i) => ({ ref: `${OTHER_REF}-${long}-${i}`, bundleId: ID_B })))
    const records = await sender.store.refRecords()
    expect(records.reduce((sum, r) => sum + r.byteLength, 0)).toBeGreaterThan(MAX_REF_BATCH_BYTES)

    await dial(sender, receiver)
    expect(await readRecords(receiver, held)).toBe(true)
    expect((await receiver.store.refNames()).length).toBe(held)
    expect(charges).toEqual([])
    // Each batch was taken as it was sent: none was refused whole and owed again.
    expect(sender.debugs.filter(line => line.startsWith('could not send'))).toEqual([])
  })

  it('waits with the batch on a reconnect until the neighbour\'s allowance takes it: no charge, nothing lost', async () => {
    const key = await createPeerKey()
    const { sender, receiver, charges } = await chargedPair(peerIdOfKey(key))
    // Most of the burst goes on the first connect's batch: the second, within a second, would overdraw it.
    const held = Math.floor(REF_RECORDS_BURST * 0.8)
    await sender.sync.publish(key, Array.from({ length: held }, (_, i) => ({ ref: `${OTHER_REF}-${i}`, bundleId: ID_B })))
    await dial(sender, receiver)
    expect(await readRecords(receiver, held)).toBe(true)

    await sender.node.hangUp(receiver.node.peerId)
    // Published while they are apart: only what is sent on reconnect carries it.
    await sender.sync.publish(key, [{ ref: REF, bundleId: ID_A }])
    const arrived = recordArrives(receiver.store, REF)
    await dial(sender, receiver)
    await arrived

    expect((await receiver.store.getRef(REF))?.bundleId).toBe(ID_A)
    // Everything held was sent again, the last of it after the allowance refilled.
    expect(await readRecords(receiver, 2 * held + 1)).toBe(true)
    expect((await receiver.store.refNames()).length).toBe(held + 1)
    expect(receiver.sync.stats().overAllowance).toBe(0)
    expect(charges).toEqual([])
  })

  it('waits with the batch after a restart until the neighbour\'s allowance has refilled: it does not know what it sent before', async () => {
    const key = await createPeerKey()
    const identity = await createPeerKey()
    const dir = await tempDir()
    const charges: string[] = []
    const receiver = await syncNode(peerIdOfKey(key), { onInvalid: (_peer, why) => { charges.push(`sender charged: ${why}`) } })
    const before = await syncNode(peerIdOfKey(key), {}, undefined, { privateKey: identity, dir })
    const held = Math.floor(REF_RECORDS_BURST * 0.8)
    await before.sync.publish(key, Array.from({ length: held }, (_, i) => ({ ref: `${OTHER_REF}-${i}`, bundleId: ID_B })))
    await dial(before, receiver)
    expect(await readRecords(receiver, held)).toBe(true)

    // The sender stops and comes back at once, same identity, same store.
    opened.splice(opened.indexOf(before), 1)
    before.sync.stop()
    await before.node.stop()
    await before.store.close()
    const after = await syncNode(peerIdOfKey(key), {}, undefined, { privateKey: identity, dir })
    await after.sync.publish(key, [{ ref: REF, bundleId: ID_A }])
    const arrived = recordArrives(receiver.store, REF)
    await dial(after, receiver)
    await arrived
    expect(await readRecords(receiver, 2 * held + 1)).toBe(true)
    expect(receiver.sync.stats().overAllowance).toBe(0)
    expect(charges).toEqual([])
  })
})
