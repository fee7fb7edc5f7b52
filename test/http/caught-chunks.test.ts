import { once } from 'node:events'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { BodyWriter } from '../../src/http/body-writer.js'
import { CaughtChunks } from '../../src/http/caught-chunks.js'

const KiB = 1024

/** A real response whose body the test writes, and the client's view of it. */
async function openResponse (servers: Server[]): Promise<{ res: ServerResponse, body: Promise<Buffer> }> {
  let handed!: (res: ServerResponse) => void
  const handedOver = new Promise<ServerResponse>((resolve) => { handed = resolve })
  const server = createServer((_req, res) => { handed(res) })
  servers.push(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const answer = fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
  const res = await handedOver
  res.writeHead(200)
  return { res, body: answer.then(async (response) => Buffer.from(await response.arrayBuffer())) }
}

/** The writer's side of a kept chunk: how many keepers hold it. */
function keeper (): { keep: () => () => void, held: () => number } {
  let held = 0
  return {
    keep: () => {
      held++
      let once = true
      return () => { if (once) { once = false; held-- } }
    },
    held: () => held,
  }
}

describe('chunks an arriving blob\'s response keeps (caught-chunks.ts)', () => {
  const servers: Server[] = []
  afterEach(() => { for (const server of servers.splice(0)) server.close() })

  it('keeps chunks far ahead of the one it needs in the memory they came in, up to its count, and gives each back once the socket sent it', async () => {
    const { res, body } = await openResponse(servers)
    const writer = new BodyWriter(res, 4, 64 * KiB)
    // Copies only for the next 3; up to 6 kept where they are, at any distance.
    const caught = new CaughtChunks(writer, 0, 3, 6)
    const memory = keeper()
    const chunk = (index: number): Uint8Array => new Uint8Array(16 * KiB).fill(index)
    // Chunks 10.. come while the response still needs chunk 0: far past the copying window.
    for (let index = 10; index < 16; index++) expect(caught.offer(index, chunk(index), memory.keep)).toBe(true)
    expect(memory.held()).toBe(6)
    // The seventh is refused: the writer then stops, or the response reads it from the file.
    expect(caught.offer(16, chunk(16), memory.keep)).toBe(false)
    // Without `keep`, only the copying window counts.
    expect(caught.offer(20, chunk(20))).toBe(false)
    expect(caught.offer(1, chunk(1))).toBe(true)
    expect(caught.take(0)).toBeUndefined()
    const sent: number[] = []
    for (const index of [1, 10, 11]) {
      const entry = caught.take(index)
      expect(entry).toBeDefined()
      if (entry === undefined) continue
      writer.send(entry.bytes, entry.buffer, entry.release)
      sent.push(index)
    }
    // The two kept ones sent are given back as their writes complete; the other four on clear.
    await writer.end(AbortSignal.timeout(5_000))
    expect(memory.held()).toBe(4)
    caught.clear()
    expect(memory.held()).toBe(0)
    const received = await body
    expect([...received.subarray(0, 1), received[16 * KiB], received[32 * KiB]]).toEqual(sent)
  })
})
