import { describe, expect, it } from 'vitest'
import { MAX_PEERS_WITH_STATS, TransferStats } from '../../src/swarm/swarm-stats.js'

describe('transfer stats', () => {
  it('keep per-peer figures for a bounded number of peers, the totals for all of them', () => {
    // A stranger may bring a new identity every few seconds for as long as it likes (each one
    // served a chunk or two); every peer ever seen kept an entry, listed in every status answer.
    const stats = new TransferStats()
    const peers = MAX_PEERS_WITH_STATS * 3
    for (let i = 0; i < peers; i++) stats.uploaded(`peer-${i}`, 1000)
    stats.downloaded('peer-0', 500, false)
    const snapshot = stats.snapshot()
    expect(Object.keys(snapshot.perPeer).length).toBeLessThanOrEqual(MAX_PEERS_WITH_STATS)
    expect(snapshot.bytesUploaded).toBe(peers * 1000)
    expect(snapshot.chunksUploaded).toBe(peers)
    expect(snapshot.bytesDownloaded).toBe(500)
    // The latest active are the ones kept; a peer forgotten and active again starts over.
    expect(snapshot.perPeer[`peer-${peers - 1}`]?.bytesUploaded).toBe(1000)
    expect(snapshot.perPeer['peer-0']).toMatchObject({ bytesUploaded: 0, bytesDownloaded: 500 })
    expect(snapshot.perPeer['peer-1']).toBeUndefined()
  })
})
