import { describe, expect, it } from 'vitest'
import { bodyBatches } from '../../src/upstream/body-batches.js'

/** A body whose pieces the test hands over one by one; `ended` ends it. */
function controlledBody (): { body: AsyncIterable<Uint8Array>, give: (piece: Uint8Array) => void, end: () => void, cancelled: () => boolean } {
  const queue: Array<Uint8Array | null> = []
  let wake: (() => void) | undefined
  let cancelled = false
  const body: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        while (queue.length === 0) await new Promise<void>(resolve => { wake = resolve })
        const piece = queue.shift()
        return piece === null || piece === undefined ? { done: true, value: undefined } : { done: false, value: piece }
      },
      return: async () => {
        cancelled = true
        return { done: true, value: undefined }
      },
    }),
  }
  const push = (piece: Uint8Array | null): void => {
    queue.push(piece)
    wake?.()
  }
  return { body, give: push, end: () => { push(null) }, cancelled: () => cancelled }
}

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill)

describe('bodyBatches: a response body in groups for fewer, larger writes', () => {
  it('groups pieces up to the size, keeps their order, and hands on the rest at the end', async () => {
    const { body, give, end } = controlledBody()
    for (let i = 0; i < 7; i++) give(bytes(3, i))
    end()
    const groups: Uint8Array[][] = []
    for await (const group of bodyBatches(body, { bytes: 9, waitMs: 60_000 })) groups.push(group)
    expect(groups.map(group => group.length)).toEqual([3, 3, 1])
    expect(groups.flat().map(piece => piece[0])).toEqual([0, 1, 2, 3, 4, 5, 6])
  })

  it('hands on a group that is not full once its wait passed, while the body has nothing more', async () => {
    const { body, give, end } = controlledBody()
    const batches = bodyBatches(body, { bytes: 1024, waitMs: 5 })[Symbol.asyncIterator]()
    give(bytes(10, 1))
    give(bytes(10, 2))
    // The body sends nothing more until the test has the group: only the wait can hand it on.
    const first = await batches.next()
    expect(first.value?.map((piece: Uint8Array) => piece[0])).toEqual([1, 2])
    give(bytes(10, 3))
    end()
    expect((await batches.next()).value?.map((piece: Uint8Array) => piece[0])).toEqual([3])
    expect((await batches.next()).done).toBe(true)
  })

  it('cancels the body without waiting for the read under way when the consumer stops', async () => {
    const { body, give, cancelled } = controlledBody()
    give(bytes(10, 1))
    for await (const group of bodyBatches(body, { bytes: 10, waitMs: 60_000 })) {
      expect(group).toHaveLength(1)
      // The body stalls from here on (its next read never settles); stopping must not hang.
      break
    }
    expect(cancelled()).toBe(true)
  })
})
