/**
 * A Map that keeps only the `capacity` entries set most recently: `set` makes its key the
 * newest, and when that puts one entry over, the oldest goes. Reads do not refresh (this is
 * not an LRU cache): what peers or clients send decides what is kept, and a flood of new
 * keys cannot grow it. Iteration runs oldest first, as a Map's does.
 */
export class RecentMap<K, V> extends Map<K, V> {
  constructor (readonly capacity: number) {
    super()
  }

  override set (key: K, value: V): this {
    super.delete(key)
    super.set(key, value)
    if (this.size > this.capacity) dropOldest(this)
    return this
  }
}

/** The Set of RecentMap: `add` makes its value the newest, and the oldest past `capacity` goes. */
export class RecentSet<T> extends Set<T> {
  constructor (readonly capacity: number) {
    super()
  }

  override add (value: T): this {
    super.delete(value)
    super.add(value)
    if (this.size > this.capacity) dropOldest(this)
    return this
  }
}

function dropOldest<K> (kept: { keys: () => IterableIterator<K>, delete: (key: K) => boolean }): void {
  const oldest = kept.keys().next()
  if (oldest.done !== true) kept.delete(oldest.value)
}
