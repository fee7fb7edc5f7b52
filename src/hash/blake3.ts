import { createRequire } from 'node:module'

/** An incremental BLAKE3 hasher; digests are lowercase hex, as snapdir and b3sum print them. */
export interface Blake3Hasher {
  update (data: Uint8Array): void
  digestHex (): string
}

interface NativeHasher { update (input: Uint8Array): NativeHasher, digest (format: 'hex'): string }
interface NativeModule { Blake3Hasher: new () => NativeHasher, blake3: (input: Uint8Array) => Buffer }

function loadNative (): NativeModule | undefined {
  if (process.env.SHOAL_FORCE_WASM_BLAKE3 === '1') return undefined
  try {
    // The native binding is ~8x faster than WASM here; it is optional so that
    // platforms without a prebuilt binary still work.
    return createRequire(import.meta.url)('@napi-rs/blake-hash') as NativeModule
  } catch {
    return undefined
  }
}

const native = loadNative()
// hash-wasm needs one async initialisation; top-level await keeps every call site synchronous.
// Imported only where the native binding is missing: its bundle (every hash-wasm algorithm,
// ~0.27 MB of source) would otherwise sit in every daemon's memory unused.
const wasm = native === undefined ? await (await import('hash-wasm')).createBLAKE3() : undefined

export const blake3Backend: 'native' | 'wasm' = native !== undefined ? 'native' : 'wasm'

export function createBlake3 (): Blake3Hasher {
  if (native !== undefined) {
    const hasher = new native.Blake3Hasher()
    return {
      update (data) { hasher.update(data) },
      digestHex () { return hasher.digest('hex') },
    }
  }
  // hash-wasm exposes one shared WASM instance; each hasher keeps its own saved
  // state and swaps it in around every update, so many hashes can be in flight.
  const shared = wasm
  if (shared === undefined) throw new Error('no BLAKE3 implementation loaded')
  shared.init()
  let state = shared.save()
  return {
    update (data) {
      shared.load(state)
      shared.update(data)
      state = shared.save()
    },
    digestHex () {
      shared.load(state)
      return shared.digest('hex')
    },
  }
}

export function blake3Hex (data: Uint8Array): string {
  if (native !== undefined) return native.blake3(data).toString('hex')
  const hasher = createBlake3()
  hasher.update(data)
  return hasher.digestHex()
}
