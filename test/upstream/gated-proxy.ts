import { EventEmitter, once } from 'node:events'
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** What to do with one blob's body once `afterBytes` of it went out. */
export interface BlobGate {
  afterBytes: number
  /** `hold`: send nothing more until `release`; `drop`: cut the connection there. */
  action: 'hold' | 'drop'
}

export interface GatedProxy {
  url: string
  host: string
  /** Every request the registry was asked, with its status. */
  requests: Array<{ method: string, path: string, status: number }>
  /** Gates a blob (by `sha256:<hex>`) for the next requests of it. */
  gate: (digest: string, gate: BlobGate) => void
  /** Lets a held blob's bodies go on, and stops gating it. */
  release: (digest: string) => void
  /** Emits `held` (digest, bytes sent) when a body stops at its gate, `dropped` likewise. */
  events: EventEmitter
  /** Bytes of each blob's bodies sent so far (all requests), by digest. */
  sent: Map<string, number>
  close: () => Promise<void>
}

/**
 * A node:http proxy in front of a real docker-registry that can stop a blob's body part-way,
 * to see what happens downstream while an upstream download is still in progress (held), or
 * when the registry's connection drops mid-blob (dropped). Events, not clocks, tell a test
 * where the body is.
 */
export async function startGatedProxy (target: string): Promise<GatedProxy> {
  const requests: GatedProxy['requests'] = []
  const gates = new Map<string, BlobGate>()
  const releases = new EventEmitter()
  releases.setMaxListeners(0)
  const events = new EventEmitter()
  const sent = new Map<string, number>()
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy')
    const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1]
    const upstream = httpRequest(new URL(url.pathname + url.search, target), { method: req.method, headers: { ...req.headers, host: new URL(target).host } }, (answer) => {
      const entry = { method: req.method ?? 'GET', path: url.pathname, status: answer.statusCode ?? 0 }
      requests.push(entry)
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      const gate = digest === undefined ? undefined : gates.get(digest)
      if (digest === undefined || gate === undefined || req.method !== 'GET' || answer.statusCode !== 200) {
        answer.pipe(res)
        return
      }
      void gatedBody(answer, digest, gate)
    })
    upstream.on('error', () => { res.destroy() })
    req.pipe(upstream)

    async function gatedBody (answer: import('node:http').IncomingMessage, key: string, gate: BlobGate): Promise<void> {
      let count = 0
      let stopped = false
      try {
        for await (const piece of answer as AsyncIterable<Buffer>) {
          let rest = piece
          if (!stopped && count + rest.byteLength >= gate.afterBytes) {
            const head = rest.subarray(0, gate.afterBytes - count)
            rest = rest.subarray(head.byteLength)
            await write(head)
            stopped = true
            if (gate.action === 'drop') {
              events.emit('dropped', key, count)
              res.destroy()
              answer.destroy()
              return
            }
            events.emit('held', key, count)
            if (gates.has(key)) await once(releases, key)
          }
          await write(rest)
        }
        res.end()
      } catch {
        res.destroy()
      }

      async function write (bytes: Buffer): Promise<void> {
        if (bytes.byteLength === 0) return
        count += bytes.byteLength
        sent.set(key, (sent.get(key) ?? 0) + bytes.byteLength)
        if (!res.write(bytes)) await once(res, 'drain')
      }
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    gate: (digest, gate) => { gates.set(digest, gate) },
    release: (digest) => {
      gates.delete(digest)
      releases.emit(digest)
    },
    events,
    sent,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    },
  }
}
