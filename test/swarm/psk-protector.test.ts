import { createCipheriv, createHash, randomBytes, type Cipher } from 'node:crypto'
import { connect as connectTcp, createServer, type Socket } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { createPeerKey, generateSwarmKey } from '../../src/swarm/index.js'
import type { ShoalNode } from '../../src/swarm/libp2p-node.js'
import { tcpPortOf, useBareNodes } from './bare-nodes.js'

/**
 * The swarm key's layer on the wire, against a peer written here from the format alone: a
 * 16-byte nonce each way, then every byte AES-256-CTR under SHA-256("shoal-pnet-aes-256-ctr\n"
 * + the key's 32 bytes), each direction's counter starting at its sender's nonce. Nodes of
 * every shoal version since the layer came speak exactly this, so a fleet upgraded one node at
 * a time keeps talking; and a node that skipped the cipher in either direction fails here.
 */
describe('the swarm key on the wire', () => {
  const { start: startNode, servers, sockets } = useBareNodes()
  const start = async (swarmKey: Uint8Array, listen = ['/ip4/127.0.0.1/tcp/0']): Promise<ShoalNode> => await startNode({ listen, swarmKey, encrypters: ['noise'] })

  /** The AES key of a swarm key file, derived as the format says (not through shoal's code). */
  function aesKey (swarmKey: Uint8Array): Buffer {
    const hex = Buffer.from(swarmKey).toString('latin1').trim().split('\n').at(-1) ?? ''
    return createHash('sha256').update('shoal-pnet-aes-256-ctr\n').update(Buffer.from(hex, 'hex')).digest()
  }

  /** A multistream-select message: a varint length (all of these are < 128), the text, a newline. */
  function mss (text: string): Buffer {
    const body = Buffer.from(`${text}\n`)
    return Buffer.concat([Buffer.from([body.length]), body])
  }

  /**
   * Speaks the layer on a raw socket: sends our nonce (and `first`, encrypted, in the same
   * write), and collects what the node sends, raw and decrypted, until the decrypted bytes
   * hold `until`.
   */
  async function speak (socket: Socket, key: Buffer, first: Buffer, until: Buffer): Promise<{ raw: Buffer, plain: Buffer }> {
    const nonce = randomBytes(16)
    const outbound = createCipheriv('aes-256-ctr', key, nonce)
    socket.write(Buffer.concat([nonce, outbound.update(first)]))
    let raw = Buffer.alloc(0)
    let plain = Buffer.alloc(0)
    let inbound: Cipher | undefined
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`no answer holding ${JSON.stringify(until.toString())}; decrypted so far ${JSON.stringify(plain.toString())}`)) }, 10_000)
      socket.on('error', reject)
      socket.on('data', (data: Buffer) => {
        raw = Buffer.concat([raw, data])
        if (inbound === undefined) {
          if (raw.length < 16) return
          inbound = createCipheriv('aes-256-ctr', key, raw.subarray(0, 16))
          plain = inbound.update(raw.subarray(16))
        } else {
          plain = Buffer.concat([plain, inbound.update(data)])
        }
        if (plain.includes(until)) {
          clearTimeout(timer)
          resolve({ raw: raw.subarray(16), plain })
        }
      })
    })
  }

  it('answers a peer that speaks the format, and nothing of the negotiation shows on the wire', async () => {
    const swarmKey = generateSwarmKey()
    const node = await start(swarmKey)
    const port = tcpPortOf(node)
    const socket = connectTcp({ host: '127.0.0.1', port })
    sockets.push(socket)
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve).once('error', reject) })

    // The nonce and the first encrypted bytes in one write: the node reads them in one piece
    // and must decrypt what follows the nonce too.
    const negotiation = Buffer.concat([mss('/multistream/1.0.0'), mss('/noise')])
    const { raw, plain } = await speak(socket, aesKey(swarmKey), negotiation, mss('/noise'))

    // The node answered our encrypted proposal with its own, which we decrypted.
    expect(plain.subarray(0, negotiation.length)).toEqual(negotiation)
    expect(raw.includes('/multistream')).toBe(false)
    expect(raw.includes('/noise')).toBe(false)
  })

  it('sends its own negotiation encrypted when it dials', async () => {
    const swarmKey = generateSwarmKey()
    const node = await start(swarmKey, [])
    let accepted!: (socket: Socket) => void
    const incoming = new Promise<Socket>(resolve => { accepted = resolve })
    const server = createServer(socket => {
      sockets.push(socket)
      accepted(socket)
    })
    servers.push(server)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    const peer = await createPeerKey()
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const dial = node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${port}/p2p/${peerIdFromPrivateKey(peer).toString()}`), { signal: AbortSignal.timeout(10_000) })
    dial.catch(() => {})

    const { raw, plain } = await speak(await incoming, aesKey(swarmKey), Buffer.alloc(0), Buffer.from('/noise\n'))

    expect(plain.subarray(0, mss('/multistream/1.0.0').length)).toEqual(mss('/multistream/1.0.0'))
    expect(raw.includes('/multistream')).toBe(false)
    expect(raw.includes('/noise')).toBe(false)
  })

  it('carries 24 MiB between two keyed nodes byte for byte, through every write the socket refuses', async () => {
    const swarmKey = generateSwarmKey()
    const listener = await start(swarmKey)
    const dialer = await start(swarmKey)
    const total = 24 * 1024 * 1024
    const received = new Promise<string>((resolve, reject) => {
      void listener.handle('/test/bytes/1', (stream) => {
        const hash = createHash('sha256')
        let length = 0
        stream.addEventListener('message', (evt) => {
          for (const piece of evt.data instanceof Uint8Array ? [evt.data] : evt.data) hash.update(piece)
          length += evt.data.byteLength
          if (length >= total) resolve(hash.digest('hex'))
        })
        stream.addEventListener('close', (evt) => { if (evt.error !== undefined) reject(evt.error) })
      })
    })
    const address = listener.getMultiaddrs()[0]
    if (address === undefined) throw new Error('the listener has no address')
    const stream = await dialer.dialProtocol(multiaddr(address.toString()), '/test/bytes/1', { signal: AbortSignal.timeout(10_000) })
    const sent = createHash('sha256')
    // Pieces of odd sizes, so noise's frames and the socket's refusals fall anywhere.
    for (let offset = 0, i = 0; offset < total; i++) {
      const size = Math.min(total - offset, 1 + (i * 104_729) % (3 * 1024 * 1024))
      const piece = randomBytes(size)
      sent.update(piece)
      offset += size
      if (!stream.send(piece)) await stream.onDrain({ signal: AbortSignal.timeout(10_000) })
    }
    expect(await received).toBe(sent.digest('hex'))
  })
})
