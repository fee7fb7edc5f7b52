import { describe, expect, it } from 'vitest'
import { isDirectAligned } from '../../src/store/direct-io.js'
import { BufferPool } from '../../src/swarm/buffer-pool.js'

const MIB = 1024 * 1024

describe('BufferPool', () => {
  it('lends a given-back buffer again, and a lease released twice gives it back once', () => {
    const pool = new BufferPool(1024, 4)
    const first = pool.take(1024)
    const lease = pool.lease(first.subarray(10, 20))
    expect(lease).toBeDefined()
    lease?.release()
    const second = pool.take(1024)
    expect(second.buffer).toBe(first.buffer)
    // The first reader's lease again (a second give): the buffer stays with its new reader.
    lease?.release()
    const third = pool.take(1024)
    expect(third.buffer).not.toBe(second.buffer)
    // The new reader's own lease gives it back.
    pool.lease(second)?.release()
    expect(pool.take(1024).buffer).toBe(second.buffer)
  })

  it('has no lease for memory it did not lend, nor for a buffer already given back', () => {
    const pool = new BufferPool(1024, 4)
    expect(pool.lease(new Uint8Array(16))).toBeUndefined()
    // Larger than the pool's buffers: its own memory, never pooled.
    expect(pool.lease(pool.take(4096))).toBeUndefined()
    const view = pool.take(512)
    pool.lease(view)?.release()
    expect(pool.lease(view)).toBeUndefined()
  })

  it('keeps at most maxFree buffers', () => {
    const pool = new BufferPool(64, 1)
    const a = pool.take(64)
    const b = pool.take(64)
    pool.lease(a)?.release()
    pool.lease(b)?.release()
    const again = [pool.take(64), pool.take(64)]
    expect(again.filter(v => v.buffer === a.buffer || v.buffer === b.buffer)).toHaveLength(1)
  })
})

describe('BufferPool, aligned', () => {
  it('puts byte alignAt of what it lends on a page boundary, and lends a given-back buffer again', () => {
    const pool = new BufferPool(MIB + 128, 4, { aligned: true })
    for (const alignAt of [0, 37, 41, 4095, 4096]) {
      const view = pool.take(MIB + 50, alignAt)
      expect(view.byteLength).toBeGreaterThanOrEqual(MIB + 50)
      expect(isDirectAligned(view.subarray(alignAt, alignAt + MIB))).toBe(true)
      const lease = pool.lease(view.subarray(alignAt, alignAt + MIB))
      expect(lease).toBeDefined()
      lease?.release()
    }
    // Buffers share a slab: a lease names its own, and a second release gives nothing back.
    const a = pool.take(MIB, 40)
    const b = pool.take(MIB, 40)
    expect(a.buffer).toBe(b.buffer)
    const leaseA = pool.lease(a.subarray(40))
    leaseA?.release()
    const c = pool.take(MIB, 40)
    expect(c.byteOffset).toBe(a.byteOffset)
    leaseA?.release()
    expect(pool.take(MIB, 40).byteOffset).not.toBe(c.byteOffset)
    expect(pool.lease(b)).toBeDefined()
  })
})
