import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { blake3Hex, createBlake3, EMPTY_BLAKE3_HEX, sha256Hex } from '../../src/hash/index.js'

describe('hash', () => {
  it('hashes the empty input to snapdir\'s golden value', () => {
    expect(blake3Hex(new Uint8Array())).toBe(EMPTY_BLAKE3_HEX)
  })

  it('gives the same digest incrementally as in one call', () => {
    const data = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 31) & 0xff)
    const hasher = createBlake3()
    hasher.update(data.subarray(0, 1000))
    hasher.update(data.subarray(1000))
    expect(hasher.digestHex()).toBe(blake3Hex(data))
  })

  it('agrees with the b3sum program', () => {
    const data = Buffer.from('shoal agrees with b3sum\n')
    const out = execFileSync('b3sum', ['--no-names'], { input: data }).toString().trim()
    expect(blake3Hex(data)).toBe(out)
  })

  it('agrees between the native and the WASM backend', () => {
    const data = Buffer.alloc(2_500_000, 7)
    const script = 'const h = await import("./src/hash/index.ts"); process.stdout.write(h.blake3Backend + " " + h.blake3Hex(Buffer.alloc(2500000, 7)))'
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, SHOAL_FORCE_WASM_BLAKE3: '1' },
    }).toString()
    expect(out).toBe(`wasm ${blake3Hex(data)}`)
  })

  it('computes sha256', () => {
    expect(sha256Hex(Buffer.from(''))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  })
})
