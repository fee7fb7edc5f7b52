import { createPeerKey, encodeStatusBody, peerIdOfKey, signStatus, type NodeStatusFields, type Swarm } from '../../src/swarm/index.js'
import { StatusStamp, type SignedStatus } from '../../src/swarm/pb/swarm-status.pb.js'
import type { PrivateKey } from '@libp2p/interface'
import { nextEvent } from './swarm-fixture.js'

/** What a stranger's statuses say; `site` tells the tests' nodes apart in a view. */
export const fields = (site: string): NodeStatusFields => ({
  version: '9.9.9', labels: { site }, complete: [], completeCount: 0, partial: [], partialCount: 0,
  freeBytes: 1, uploadRate: 0, downloadRate: 0, intervalMs: 60_000,
})

export type FakeStatus = SignedStatus & { peerId: string, key: PrivateKey }

/** `count` nodes that exist only as their self-signed statuses: what any stranger can make. */
export async function fakeStatuses (count: number): Promise<FakeStatus[]> {
  const body = encodeStatusBody(fields('fake'))
  const now = Date.now()
  return await Promise.all(Array.from({ length: count }, async () => {
    const key = await createPeerKey()
    const signed = await signStatus(key, body, now)
    return { stamp: signed.stamp, signature: signed.signature, body, ageMs: 0, peerId: peerIdOfKey(key), key }
  }))
}

/** A later heartbeat of a fake, `aheadMs` past now, and the sequence a view then shows for it. */
export async function heartbeat (fake: FakeStatus, aheadMs: number): Promise<{ status: SignedStatus, sequence: number }> {
  const body = encodeStatusBody(fields('fake'))
  const signed = await signStatus(fake.key, body, Date.now() + aheadMs)
  return { status: { stamp: signed.stamp, signature: signed.signature, body, ageMs: 0 }, sequence: Number(StatusStamp.decode(signed.stamp).sequence) }
}

export const fakes = (swarm: Swarm): number => swarm.fleetView().filter(n => n.labels.site === 'fake').length

/** Resolves once `probe` holds: checked now, then on each status the swarm accepts. */
export async function until (what: string, probe: () => boolean, swarm: Swarm): Promise<void> {
  if (probe()) return
  await nextEvent(swarm, 'status:accepted', probe, 30_000).catch((err: unknown) => { throw new Error(`${what}: ${(err as Error).message}`) })
}
