// Seeded pseudo-random numbers: a run is a function of its seed.

/** mulberry32: a small, fast 32-bit generator, good enough for shuffles and graph wiring. */
export function seededRandom (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A well-mixed seed for stream `stream` of a run seeded with `seed` (one stream per node). */
export function deriveSeed (seed: number, stream: number): number {
  // splitmix32-style finaliser over the pair, so neighbouring streams are unrelated.
  let z = (Math.imul(seed >>> 0, 0x9e3779b9) ^ Math.imul((stream + 1) >>> 0, 0x85ebca6b)) >>> 0
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad)
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97)
  return (z ^ (z >>> 15)) >>> 0
}
