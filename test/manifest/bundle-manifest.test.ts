import { describe, expect, it } from 'vitest'
import { blake3Hex } from '../../src/hash/index.js'
import {
  BundleIdMismatchError, BundleManifestError, ChunkBitmap, CHUNK_SIZE_BYTES, bundleIdOf, chunkHashes, createBundleManifest,
  decodeBundleManifest, directoryChecksum, encodeBundleManifest, type ManifestEntry,
} from '../../src/manifest/index.js'

const big = Buffer.alloc(CHUNK_SIZE_BYTES * 2 + 10, 1)
const small = Buffer.from('small')
const bigHash = blake3Hex(big)
const smallHash = blake3Hex(small)
const bigChunks = [0, 1, 2].map(i => blake3Hex(big.subarray(i * CHUNK_SIZE_BYTES, (i + 1) * CHUNK_SIZE_BYTES)))

function entries (): ManifestEntry[] {
  return [
    { type: 'D', perms: '755', checksum: directoryChecksum([bigHash, smallHash]), size: big.length + small.length, path: './' },
    { type: 'F', perms: '644', checksum: bigHash, size: big.length, path: './big' },
    { type: 'F', perms: '644', checksum: smallHash, size: small.length, path: './small' },
  ]
}

describe('bundle manifest', () => {
  it('round-trips and gives a stable ID', () => {
    const bundle = createBundleManifest(entries(), new Map([[bigHash, bigChunks]]))
    const encoded = encodeBundleManifest(bundle)
    const decoded = decodeBundleManifest(encoded, { expectedId: bundleIdOf(encoded) })
    expect(decoded.manifestText).toBe(bundle.manifestText)
    expect(chunkHashes(decoded, { hash: bigHash, size: big.length })).toEqual(bigChunks)
    expect(chunkHashes(decoded, { hash: smallHash, size: small.length })).toEqual([smallHash])
    expect(encodeBundleManifest(decoded).equals(encoded)).toBe(true)
    expect(encoded.toString()).toMatch(/^shoal-bundle 1\nchunk-size 1048576\nchunked 1\n/)
  })

  it('refuses bytes that do not hash to the ID asked for', () => {
    const encoded = encodeBundleManifest(createBundleManifest(entries(), new Map([[bigHash, bigChunks]])))
    expect(() => decodeBundleManifest(encoded, { expectedId: blake3Hex(Buffer.from('other')) })).toThrow(BundleIdMismatchError)
  })

  it('refuses a chunk table of the wrong length, a missing table and non-canonical bytes', () => {
    expect(() => createBundleManifest(entries(), new Map([[bigHash, bigChunks.slice(1)]]))).toThrow(BundleManifestError)
    expect(() => createBundleManifest(entries(), new Map())).toThrow(BundleManifestError)
    const encoded = encodeBundleManifest(createBundleManifest(entries(), new Map([[bigHash, bigChunks]])))
    const withComment = Buffer.concat([encoded, Buffer.from('# trailing comment\n')])
    expect(() => decodeBundleManifest(withComment)).toThrow(/canonical/)
    expect(() => decodeBundleManifest(encoded.subarray(0, 20))).toThrow(BundleManifestError)
  })

  it('refuses a manifest whose directory checksum does not match its children', () => {
    const forged = entries().map(e => e.path === './' ? { ...e, size: e.size + 1 } : e)
    const bundle = createBundleManifest(forged, new Map([[bigHash, bigChunks]]))
    expect(() => decodeBundleManifest(encodeBundleManifest(bundle))).toThrow(/does not match its children/)
  })
})

describe('chunk bitmap', () => {
  it('sets, counts and lists missing chunks, most significant bit first', () => {
    const bitmap = new ChunkBitmap(10)
    bitmap.set(0)
    bitmap.set(9)
    expect([...bitmap.bytes]).toEqual([0x80, 0x40])
    expect(bitmap.count()).toBe(2)
    expect(bitmap.missing()).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(ChunkBitmap.full(10).isComplete()).toBe(true)
  })

  it('refuses wrong lengths, stray trailing bits and out-of-range indexes', () => {
    expect(() => new ChunkBitmap(10, new Uint8Array(3))).toThrow(RangeError)
    expect(() => new ChunkBitmap(10, Uint8Array.from([0, 0x01]))).toThrow(RangeError)
    expect(() => { new ChunkBitmap(10).set(10) }).toThrow(RangeError)
  })
})
