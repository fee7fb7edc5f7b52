import { describe, expect, it } from 'vitest'
import { UploadPace, type PacedGauge } from '../../src/swarm/upload-pace.js'

/** A chunk stream's account the test sets by hand, on a clock it moves. */
function setup (): { pace: UploadPace, gauge: { inFlight: number, reserved: number, read: number }, tick: (ms: number) => void } {
  const gauge = { inFlight: 0, reserved: 0, read: 0 }
  let now = 1_000
  const paced: PacedGauge = { inFlight: () => gauge.inFlight, unread: () => gauge.inFlight + gauge.reserved, read: () => gauge.read }
  const pace = new UploadPace(paced, { floorBytes: 100, capBytes: 1_500, targetMs: 10, minWaitMs: 2, maxWaitMs: 25, now: () => now })
  return { pace, gauge, tick: (ms) => { now += ms } }
}

describe('upload pace', () => {
  it('has room up to the floor while the link is unmeasured, counting chunks read and not sent', () => {
    const { pace, gauge } = setup()
    expect(pace.hasRoom()).toBe(true)
    gauge.inFlight = 100
    expect(pace.hasRoom()).toBe(true)
    gauge.reserved = 1
    expect(pace.hasRoom()).toBe(false)
  })

  it('raises the mark to what the link carries in the target time, never past the cap', () => {
    const { pace, gauge, tick } = setup()
    gauge.inFlight = 2_000
    expect(pace.hasRoom()).toBe(false)
    // 50 bytes per ms credited while bytes waited: the mark is 10 ms of that.
    tick(20)
    gauge.read += 1_000
    gauge.inFlight = 1_000
    pace.hasRoom()
    expect(pace.lowWater()).toBe(500)
    // A fast link: the cap holds.
    tick(10)
    gauge.read += 10_000
    gauge.inFlight = 1_000
    pace.hasRoom()
    expect(pace.lowWater()).toBe(1_500)
  })

  it('does not take an idle stream for a slow link, and lowers the mark when an asker stops taking', () => {
    const { pace, gauge, tick } = setup()
    // Nothing in flight for a second, then a burst: the idle second is not a rate.
    pace.hasRoom()
    tick(1_000)
    gauge.inFlight = 1_000
    pace.hasRoom()
    expect(pace.lowWater()).toBe(100)
    tick(10)
    gauge.read += 1_000
    gauge.inFlight = 500
    pace.hasRoom()
    expect(pace.lowWater()).toBe(1_000)
    // It stops crediting: each look with nothing taken lowers the mark toward the floor.
    const marks: number[] = []
    for (let i = 0; i < 20; i++) {
      tick(10)
      pace.hasRoom()
      marks.push(pace.lowWater())
    }
    expect(marks[0]).toBeLessThan(1_000)
    expect(marks.at(-1)).toBe(100)
  })

  it('waits about as long as the bytes above the mark take, within bounds', () => {
    const { pace, gauge, tick } = setup()
    gauge.inFlight = 1_000
    pace.hasRoom()
    expect(pace.waitMs()).toBe(2)
    tick(10)
    gauge.read += 100
    gauge.inFlight = 900
    pace.hasRoom()
    // 10 bytes per ms, mark 100: 800 bytes above it take 80 ms, more than the longest wait.
    expect(pace.waitMs()).toBe(25)
    gauge.inFlight = 250
    expect(pace.waitMs()).toBe(15)
  })
})
