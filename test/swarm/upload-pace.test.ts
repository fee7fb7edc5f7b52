import { describe, expect, it } from 'vitest'
import { UPLOAD_PACE_CAP_BYTES, UPLOAD_PACE_GATEWAY_CAP_BYTES } from '../../src/swarm/constants.js'
import { gatewayPaceCapBytes, UploadPace, type PacedGauge } from '../../src/swarm/upload-pace.js'

/** A chunk stream's account the test sets by hand, on a clock it moves. */
function setup (): { pace: UploadPace, gauge: { sent: number, reserved: number, read: number }, send: (bytes: number) => void, tick: (ms: number) => void } {
  const gauge = { sent: 0, reserved: 0, read: 0 }
  let now = 1_000
  const inFlight = (): number => gauge.sent - gauge.read
  const paced: PacedGauge = { inFlight, unread: () => inFlight() + gauge.reserved, read: () => gauge.read }
  const pace = new UploadPace(paced, { floorBytes: 100, capBytes: 1_500, targetMs: 10, minWaitMs: 2, maxWaitMs: 25, now: () => now })
  const send = (bytes: number): void => {
    gauge.sent += bytes
    pace.sent()
  }
  return { pace, gauge, send, tick: (ms) => { now += ms } }
}

describe('upload pace', () => {
  it('has room up to the floor while the link is unmeasured, counting chunks read and not sent', () => {
    const { pace, gauge, send } = setup()
    expect(pace.hasRoom()).toBe(true)
    send(100)
    expect(pace.hasRoom()).toBe(true)
    gauge.reserved = 1
    expect(pace.hasRoom()).toBe(false)
  })

  it('raises the mark to what the link carries in the target time, never past the cap', () => {
    const { pace, gauge, send, tick } = setup()
    // 50 bytes per ms: 1,000 bytes handed down and credited 20 ms later; the mark is 10 ms of that.
    send(1_000)
    tick(20)
    gauge.read = 1_000
    pace.hasRoom()
    expect(pace.lowWater()).toBe(500)
    // A fast link: the cap holds.
    send(100_000)
    tick(10)
    gauge.read = 101_000
    pace.hasRoom()
    expect(pace.lowWater()).toBe(1_500)
  })

  it('keeps the mark of a slow link when its asker credits a burst after a stall', () => {
    const { pace, gauge, send, tick } = setup()
    // 5 bytes per ms, 100-byte frames, for a while: the mark is the floor (10 ms of 5 bytes/ms is 50).
    for (let i = 0; i < 10; i++) {
      send(100)
      tick(20)
      gauge.read += 100
      pace.hasRoom()
    }
    expect(pace.lowWater()).toBe(100)
    // Four frames handed down 20 ms apart, the asker stalls, then credits them in one go 1 ms
    // after the last: 400 bytes in a millisecond by its credits, 400 in 60 ms by our hand-off.
    for (let i = 0; i < 4; i++) {
      send(100)
      tick(20)
    }
    tick(-19)
    gauge.read += 400
    pace.hasRoom()
    expect(pace.lowWater()).toBe(100)
  })

  it('goes back to the floor when the asker has taken nothing for a while', () => {
    const { pace, gauge, send, tick } = setup()
    send(1_000)
    tick(10)
    gauge.read = 1_000
    pace.hasRoom()
    expect(pace.lowWater()).toBe(1_000)
    tick(2_000)
    expect(pace.lowWater()).toBe(100)
  })

  it('sends a chunk whole where the mark holds two, in pieces where it does not', () => {
    const { pace, gauge, send, tick } = setup()
    expect(pace.pieceBytes(40)).toBe(50)
    send(1_000)
    tick(10)
    gauge.read = 1_000
    pace.hasRoom()
    expect(pace.pieceBytes(40)).toBe(500)
  })

  it('waits about as long as the bytes above the mark take, within bounds', () => {
    const { pace, gauge, send, tick } = setup()
    send(1_000)
    pace.hasRoom()
    // Unmeasured: look again soon.
    expect(pace.waitMs()).toBe(2)
    tick(100)
    gauge.read = 1_000
    send(1_000)
    pace.hasRoom()
    // 10 bytes per ms, mark 100: 900 bytes above it take 90 ms, more than the longest wait.
    expect(pace.waitMs()).toBe(25)
    gauge.read = 1_750
    expect(pace.waitMs()).toBe(15)
  })

  it('looks a cap that is a function up at every look', () => {
    const gauge = { sent: 0, read: 0 }
    let cap = 1_500
    const paced: PacedGauge = { inFlight: () => gauge.sent - gauge.read, unread: () => gauge.sent - gauge.read, read: () => gauge.read }
    let now = 1_000
    const pace = new UploadPace(paced, { floorBytes: 100, capBytes: () => cap, targetMs: 10, minWaitMs: 2, maxWaitMs: 25, now: () => now })
    // A fast link: 100,000 bytes credited 10 ms after they went down.
    gauge.sent = 100_000
    pace.sent()
    now += 10
    gauge.read = 100_000
    pace.hasRoom()
    expect(pace.lowWater()).toBe(1_500)
    cap = 8_000
    expect(pace.lowWater()).toBe(8_000)
  })
})

describe('a gateway\'s pace cap', () => {
  const sharing = (): boolean => false
  const takers = (peer: string): boolean => peer.startsWith('taker')

  it('is the full cap for an asker alone, or beside takers, or beside its own other streams', () => {
    expect(gatewayPaceCapBytes('edge', [{ peer: 'edge', queuedRequests: 3 }], sharing)).toBe(UPLOAD_PACE_CAP_BYTES)
    expect(gatewayPaceCapBytes('edge', [{ peer: 'edge', queuedRequests: 3 }, { peer: 'edge', queuedRequests: 5 }], sharing)).toBe(UPLOAD_PACE_CAP_BYTES)
    expect(gatewayPaceCapBytes('edge', [{ peer: 'edge', queuedRequests: 3 }, { peer: 'taker-1', queuedRequests: 30 }], takers)).toBe(UPLOAD_PACE_CAP_BYTES)
  })

  it('is a chunk and a half while another neighbour that shares has requests queued', () => {
    expect(UPLOAD_PACE_GATEWAY_CAP_BYTES).toBeLessThan(UPLOAD_PACE_CAP_BYTES)
    const askers = [{ peer: 'edge', queuedRequests: 3 }, { peer: 'edge-2', queuedRequests: 1 }]
    expect(gatewayPaceCapBytes('edge', askers, sharing)).toBe(UPLOAD_PACE_GATEWAY_CAP_BYTES)
    // Once the other's queue is empty (it has what it asked for), the asker has the link alone.
    askers[1] = { peer: 'edge-2', queuedRequests: 0 }
    expect(gatewayPaceCapBytes('edge', askers, sharing)).toBe(UPLOAD_PACE_CAP_BYTES)
  })
})
