import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { CID } from 'multiformats/cid'
import { bundleCid, checkSwarmKey, createPeerKey, generateSwarmKey, parsePeerKey, peerIdOfKey, serializePeerKey } from '../../src/swarm/index.js'

describe('identity and keys', () => {
  it('keeps a peer identity across serialization', async () => {
    const key = await createPeerKey()
    const again = parsePeerKey(serializePeerKey(key))
    expect(peerIdOfKey(again)).toBe(peerIdOfKey(key))
    expect(peerIdOfKey(key)).toMatch(/^12D3KooW/)
  })

  it('refuses bytes that are not a private key', () => {
    expect(() => parsePeerKey(Uint8Array.of(1, 2, 3))).toThrow(expect.objectContaining({ code: 'SWARM_INVALID_PEER_KEY' }))
  })

  it('writes swarm keys in the format go-libp2p and kubo read', () => {
    const key = Buffer.from(generateSwarmKey()).toString('latin1')
    expect(key).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/)
    expect(Buffer.from(generateSwarmKey()).toString('latin1')).not.toBe(key)
  })

  it('accepts a swarm key file with a trailing newline and refuses a malformed one', () => {
    const key = generateSwarmKey()
    expect(Buffer.from(checkSwarmKey(Buffer.concat([key, Buffer.from('\n')]))).equals(Buffer.from(key))).toBe(true)
    expect(() => checkSwarmKey(Buffer.from('/key/swarm/psk/1.0.0/\n/base64/\nabc'))).toThrow(expect.objectContaining({ code: 'SWARM_INVALID_KEY' }))
    expect(() => checkSwarmKey(Buffer.from('/key/swarm/psk/1.0.0/\n/base16/\n' + 'A'.repeat(64)))).toThrow(expect.objectContaining({ code: 'SWARM_INVALID_KEY' }))
  })

  it('names a bundle in the DHT by a raw CID of the SHA2-256 of its ID, a multihash kad-dht reads back as a CID', () => {
    const id = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
    const cid = bundleCid(id)
    expect(cid.version).toBe(1)
    expect(cid.code).toBe(0x55)
    expect(cid.multihash.code).toBe(0x12)
    expect(Buffer.from(cid.multihash.digest).toString('hex')).toBe(createHash('sha256').update(Buffer.from(id, 'hex')).digest('hex'))
    // What kad-dht's ADD_PROVIDER and GET_PROVIDERS handlers do with the key it sends (the multihash's bytes).
    expect(CID.decode(cid.multihash.bytes).multihash.bytes).toEqual(cid.multihash.bytes)
    expect(() => bundleCid('xyz')).toThrow(expect.objectContaining({ code: 'SWARM_INVALID_ID' }))
  })
})
