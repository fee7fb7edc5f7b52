import { createServer, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

const MIB = 1024 * 1024

/** One request as it passed through, with what was answered. */
export interface RelayedRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  /** The status the target answered (undefined until it did). */
  status?: number
  responseHeaders?: IncomingHttpHeaders
  /** Body bytes handed on to the client. */
  bytes: number
  /** True when the relay cut the client's connection in the middle of this body. */
  cut: boolean
  /** performance.now() when the request came in, the target's headers arrived, its first body byte arrived, the body ended. */
  startedAt: number
  headersAt?: number
  firstByteAt?: number
  endedAt?: number
  /** performance.now() when each whole MiB of the body had been handed on (a byte-rate time series). */
  mibAt: number[]
}

export interface HttpRelay {
  /** `http://127.0.0.1:PORT` */
  url: string
  requests: RelayedRequest[]
  close: () => Promise<void>
}

/**
 * An HTTP relay in front of `target` (`host:port`) that records every request and, when
 * `cutAfter` returns a byte count for one, hands on only that many body bytes and then
 * destroys the client's connection mid-body, as a dropped link does. Responses are otherwise
 * passed through untouched (status, headers, body).
 */
export async function startHttpRelay (target: string, cutAfter: (request: RelayedRequest) => number | undefined = () => undefined): Promise<HttpRelay> {
  const [host = '127.0.0.1', port = ''] = splitHostPort(target)
  const requests: RelayedRequest[] = []
  const server = createServer((req, res) => {
    const entry: RelayedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes: 0, cut: false, startedAt: performance.now(), mibAt: [] }
    requests.push(entry)
    const upstream = httpRequest({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers, agent: false }, response => {
      entry.status = response.statusCode
      entry.responseHeaders = response.headers
      entry.headersAt = performance.now()
      const headers: OutgoingHttpHeaders = { ...response.headers }
      delete headers.connection
      delete headers['keep-alive']
      res.writeHead(response.statusCode ?? 502, headers)
      const limit = cutAfter(entry)
      response.on('data', (data: Buffer) => {
        entry.firstByteAt ??= performance.now()
        if (entry.cut) return
        if (limit !== undefined && entry.bytes + data.length >= limit) {
          const last = data.subarray(0, limit - entry.bytes)
          entry.bytes += last.length
          entry.cut = true
          response.destroy()
          // Once the last bytes are flushed, the connection goes away without finishing the body.
          res.write(last, () => { res.socket?.destroy() })
          return
        }
        entry.bytes += data.length
        while (entry.bytes >= (entry.mibAt.length + 1) * MIB) entry.mibAt.push(performance.now())
        if (!res.write(data)) {
          response.pause()
          res.once('drain', () => { response.resume() })
        }
      })
      response.on('end', () => {
        entry.endedAt = performance.now()
        if (!entry.cut) res.end()
      })
      response.on('error', () => { res.socket?.destroy() })
    })
    upstream.on('error', () => { res.socket?.destroy() })
    req.pipe(upstream)
    res.on('close', () => { if (!res.writableFinished) upstream.destroy() })
  })
  return { ...await listen(server), requests }
}

/** A server that must never be contacted: it records every request and answers 503. */
export interface Tripwire {
  url: string
  /** `METHOD URL` of every request it got. */
  requests: string[]
  close: () => Promise<void>
}

export async function startTripwire (): Promise<Tripwire> {
  const requests: string[] = []
  const server = createServer((req, res) => {
    requests.push(`${req.method ?? ''} ${req.url ?? ''}`)
    req.resume()
    res.writeHead(503, { 'content-type': 'text/plain' }).end('this host must not be contacted\n')
  })
  return { ...await listen(server), requests }
}

async function listen (server: Server): Promise<{ url: string, close: () => Promise<void> }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    },
  }
}

function splitHostPort (target: string): [string, string] {
  const colon = target.lastIndexOf(':')
  return [target.slice(0, colon), target.slice(colon + 1)]
}
