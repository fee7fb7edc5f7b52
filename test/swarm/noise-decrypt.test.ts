import { createHash, randomBytes } from 'node:crypto'
import { connect as connectTcp, createServer } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import type { ShoalNode } from '../../src/swarm/libp2p-node.js'
import { MessageCutter } from '../../src/swarm/noise-decrypt.js'
import { tcpPortOf, useBareNodes } from './bare-nodes.js'

/**
 * noise's receive path runs without its copy of each message (noise-decrypt.ts): messages
 * spanning socket reads still arrive whole and in order, and one whose bytes were changed on
 * the way is refused, not delivered.
 */
describe('noise without the receive copy', () => {
  const { start: startNode, servers, sockets } = useBareNodes()
  const start = async (): Promise<ShoalNode> => await startNode({ encrypters: ['noise'] })

  /** A TCP relay to `port` that flips one bit of the dialer's bytes at `flipAt`, if given. */
  async function relay (port: number, flipAt?: number): Promise<number> {
    const server = createServer(inbound => {
      const outbound = connectTcp({ host: '127.0.0.1', port })
      sockets.push(inbound, outbound)
      let passed = 0
      inbound.on('data', (data: Buffer) => {
        if (flipAt !== undefined && passed <= flipAt && flipAt < passed + data.length) data.writeUInt8((data.readUInt8(flipAt - passed) ^ 0x01), flipAt - passed)
        passed += data.length
        outbound.write(data)
      })
      outbound.on('data', (data: Buffer) => inbound.write(data))
      inbound.on('close', () => outbound.destroy())
      outbound.on('close', () => inbound.destroy())
      inbound.on('error', () => {})
      outbound.on('error', () => {})
    })
    servers.push(server)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    return (server.address() as { port: number }).port
  }

  /** Sends 8 MiB from a dialer through the relay; what the listener received, and how its stream ended. */
  async function transfer (flipAt?: number): Promise<{ sent: Buffer, received: Buffer, error?: Error }> {
    const listener = await start()
    const dialer = await start()
    const listenPort = tcpPortOf(listener)
    const port = await relay(listenPort, flipAt)
    const sent = randomBytes(8 * 1024 * 1024)
    const done = new Promise<{ received: Buffer, error?: Error }>((resolve) => {
      const pieces: Uint8Array[] = []
      let length = 0
      void listener.handle('/test/bytes/1', (stream) => {
        stream.addEventListener('message', (evt) => {
          for (const piece of evt.data instanceof Uint8Array ? [evt.data] : evt.data) pieces.push(piece.slice())
          length += evt.data.byteLength
          if (length >= sent.length) resolve({ received: Buffer.concat(pieces) })
        })
        stream.addEventListener('close', (evt) => { resolve({ received: Buffer.concat(pieces), error: evt.error ?? new Error('closed early') }) })
      })
      listener.addEventListener('connection:close', () => { resolve({ received: Buffer.concat(pieces), error: new Error('connection closed') }) })
    })
    const stream = await dialer.dialProtocol(multiaddr(`/ip4/127.0.0.1/tcp/${port}/p2p/${listener.peerId.toString()}`), '/test/bytes/1', { signal: AbortSignal.timeout(10_000) })
    // Odd sizes, so messages and socket reads fall anywhere against each other.
    for (let offset = 0, i = 0; offset < sent.length; i++) {
      const end = Math.min(sent.length, offset + 1 + (i * 104_729) % (1024 * 1024))
      try {
        if (!stream.send(sent.subarray(offset, end))) await stream.onDrain({ signal: AbortSignal.timeout(10_000) })
      } catch {
        break
      }
      offset = end
    }
    return { sent, ...await done }
  }

  it('delivers every byte in order across messages that span socket reads', async () => {
    const { sent, received, error } = await transfer()
    expect(error).toBeUndefined()
    expect(createHash('sha256').update(received).digest('hex')).toBe(createHash('sha256').update(sent).digest('hex'))
  })

  it('refuses a message changed on the way and delivers nothing of it', async () => {
    // Well past the handshake, inside the data.
    const { sent, received, error } = await transfer(3 * 1024 * 1024 + 12_345)
    expect(error).toBeDefined()
    expect(received.length).toBeLessThan(sent.length)
    expect(received.equals(sent.subarray(0, received.length))).toBe(true)
  })
})

describe('noise messages cut without a throw', () => {
  /** Messages of these lengths, each a 2-byte big-endian length and then its bytes. */
  function framed (lengths: number[]): { wire: Buffer, messages: Buffer[] } {
    const messages = lengths.map(length => randomBytes(length))
    const wire = Buffer.concat(messages.flatMap(message => [Buffer.from([message.length >> 8, message.length & 0xff]), message]))
    return { wire, messages }
  }

  /** What the cutter makes of `reads`, in order. */
  function cut (reads: Buffer[]): Buffer[] {
    const cutter = new MessageCutter()
    return reads.flatMap(read => [...cutter.decode(read)].map(message => Buffer.from(message.subarray())))
  }

  it('cuts the same messages wherever the reads split them, length prefixes included', () => {
    const { wire, messages } = framed([3, 0, 1, 300, 2])
    const expected = messages.filter(message => message.length > 0)
    for (let at = 0; at <= wire.length; at++) expect(cut([wire.subarray(0, at), wire.subarray(at)])).toEqual(expected)
    expect(cut([...wire].map(byte => Buffer.from([byte])))).toEqual(expected)
    // The largest message noise sends, split in and around its length and its end.
    const large = framed([65_535, 4])
    for (const at of [1, 2, 3, 65_536, 65_537, 65_538, 65_539]) {
      expect(cut([large.wire.subarray(0, at), large.wire.subarray(at)])).toEqual(large.messages)
    }
  })

  it('keeps what a decoder held before it', () => {
    const { wire, messages } = framed([5, 7])
    const cutter = new MessageCutter(wire.subarray(0, 4))
    expect([...cutter.decode(wire.subarray(4))].map(message => Buffer.from(message.subarray()))).toEqual(messages)
  })
})
