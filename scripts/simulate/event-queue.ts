// A binary min-heap of events keyed by (time, insertion order). Events at the same time
// leave in the order they were pushed, which keeps a run deterministic for a seed.
//
// Times, sequence numbers and payloads live in three parallel arrays: no wrapper object
// per entry, and a sift moves plain numbers.

export class EventQueue<T> {
  private readonly times: number[] = []
  private readonly seqs: number[] = []
  private readonly items: T[] = []
  private seq = 0

  get size (): number {
    return this.items.length
  }

  push (time: number, item: T): void {
    const times = this.times
    const seqs = this.seqs
    const items = this.items
    const seq = this.seq++
    let at = items.length
    times.push(time)
    seqs.push(seq)
    items.push(item)
    // Sift up: move parents down until the new entry's place is found.
    while (at > 0) {
      const parent = (at - 1) >> 1
      const pt = times[parent] as number
      if (pt < time || (pt === time && (seqs[parent] as number) < seq)) break
      times[at] = pt
      seqs[at] = seqs[parent] as number
      items[at] = items[parent] as T
      at = parent
    }
    times[at] = time
    seqs[at] = seq
    items[at] = item
  }

  /** The earliest event's time; Infinity when empty. */
  peekTime (): number {
    return this.items.length === 0 ? Infinity : this.times[0] as number
  }

  /** Removes and returns the earliest event (undefined when empty). */
  pop (): T | undefined {
    const items = this.items
    if (items.length === 0) return undefined
    const times = this.times
    const seqs = this.seqs
    const top = items[0] as T
    const lastTime = times.pop() as number
    const lastSeq = seqs.pop() as number
    const lastItem = items.pop() as T
    const n = items.length
    if (n === 0) return top
    // Sift the last entry down from the root.
    let at = 0
    for (;;) {
      let child = 2 * at + 1
      if (child >= n) break
      const right = child + 1
      if (right < n) {
        const ct = times[child] as number
        const rt = times[right] as number
        if (rt < ct || (rt === ct && (seqs[right] as number) < (seqs[child] as number))) child = right
      }
      const ct = times[child] as number
      if (lastTime < ct || (lastTime === ct && lastSeq < (seqs[child] as number))) break
      times[at] = ct
      seqs[at] = seqs[child] as number
      items[at] = items[child] as T
      at = child
    }
    times[at] = lastTime
    seqs[at] = lastSeq
    items[at] = lastItem
    return top
  }
}
