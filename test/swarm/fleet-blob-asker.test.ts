import { describe, expect, it } from 'vitest'
import { FLEET_BLOB_RELAY_BEHIND_RATIO, FLEET_BLOB_RELAY_LAG_BYTES, relayBehind } from '../../src/swarm/fleet-blob-asker.js'

const MiB = 1024 * 1024

describe('when an asker leaves a relay that passed the floor for the pull-through node', () => {
  const relay = { bytes: 4 * MiB, bytesPerSecond: 384 * 1024 }

  it('leaves it when the node holds more than a frame beyond it and streams more than four times as fast', () => {
    expect(relayBehind(relay, { held: 12 * MiB, bytesPerSecond: relay.bytesPerSecond * FLEET_BLOB_RELAY_BEHIND_RATIO + 1 })).toMatch(/^behind its source: 393216 B\/s .* held 12582912 bytes, 4194304 sent by the relay; not charged$/)
  })

  it('keeps it when the node is not that much faster, holds no more than a frame beyond it, or gave no figures', () => {
    // An honest tree on even links runs near 1; even four times slower is kept (it takes more).
    expect(relayBehind(relay, { held: 12 * MiB, bytesPerSecond: relay.bytesPerSecond * FLEET_BLOB_RELAY_BEHIND_RATIO })).toBeUndefined()
    // The registry is the pace: the node has nothing much the relay did not send.
    expect(relayBehind(relay, { held: relay.bytes + FLEET_BLOB_RELAY_LAG_BYTES, bytesPerSecond: 100 * MiB })).toBeUndefined()
    // An older node, or one not streaming the blob and keeping no figures, or no answer.
    expect(relayBehind(relay, {})).toBeUndefined()
    expect(relayBehind(relay, { held: 12 * MiB })).toBeUndefined()
    expect(relayBehind(relay, undefined)).toBeUndefined()
  })
})
