import { stat, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { logLines, startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoal } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'

const TOKEN = 'c2hvYWwtdGVzdC10b2tlbi0wMTIzNDU2Nzg5'

interface Answer { status: number, body: string, headers: Record<string, string | string[] | undefined> }

/** A raw HTTP request with exactly the headers given (fetch would add or forbid some, as a browser does). */
async function send (where: { socketPath: string } | { host: string, port: number }, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = request({ ...where, method, path, headers, agent: false }, res => {
      let text = ''
      res.setEncoding('utf8').on('data', (s: string) => { text += s })
      res.once('end', () => { resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }) })
    })
    req.once('error', reject)
    req.end(body)
  })
}

function tcp (hostPort: string): { host: string, port: number } {
  const colon = hostPort.lastIndexOf(':')
  return { host: hostPort.slice(0, colon), port: Number(hostPort.slice(colon + 1)) }
}

function errorCode (answer: Answer): string | undefined {
  return (JSON.parse(answer.body) as { error?: { code?: string } }).error?.code
}

describe('the control API on its Unix socket (the default)', () => {
  let work: string
  let daemon: DaemonProcess

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-access-'))
    daemon = await startDaemonProcess(join(work, 'node'), ['--no-mdns'])
  })

  afterAll(async () => {
    await daemon?.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('listens in the data directory with mode 0660, and not on the registry port', async () => {
    expect(daemon.api).toBe(join(work, 'node', 'api.sock'))
    const info = await stat(daemon.api)
    expect(info.isSocket()).toBe(true)
    expect(info.mode & 0o777).toBe(0o660)
    // The registry listener does not route /api/v1/ at all: a page that can reach it cannot act.
    const registry = tcp(daemon.registry)
    const viaRegistry = await send(registry, 'POST', '/api/v1/gc', { 'content-type': 'application/json' }, '{}')
    expect(viaRegistry.status).toBe(404)
  })

  it('refuses a browser-style text/plain POST, an Origin, and a rebinding Host; takes JSON', async () => {
    const socket = { socketPath: daemon.api }
    const plain = await send(socket, 'POST', '/api/v1/gc', { 'content-type': 'text/plain' }, '{}')
    expect(plain.status).toBe(415)
    expect(errorCode(plain)).toBe('CONTENT_TYPE_REFUSED')
    const none = await send(socket, 'POST', '/api/v1/gc', {}, '{}')
    expect(none.status).toBe(415)
    const fromPage = await send(socket, 'POST', '/api/v1/gc', { 'content-type': 'application/json', origin: 'http://evil.example' }, '{}')
    expect(fromPage.status).toBe(403)
    expect(errorCode(fromPage)).toBe('ORIGIN_REFUSED')
    const rebound = await send(socket, 'GET', '/api/v1/status', { host: 'evil.example:5050' })
    expect(rebound.status).toBe(403)
    expect(errorCode(rebound)).toBe('HOST_REFUSED')
    const json = await send(socket, 'POST', '/api/v1/gc', { 'content-type': 'application/json' }, '{}')
    expect(json.status).toBe(200)
    expect(JSON.parse(json.body)).toHaveProperty('freedBytes')
    // The node's state now, answer or refusal: never kept by a cache between the caller and it.
    for (const answer of [json, plain]) expect(answer.headers).toMatchObject({ 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(answer.body)) })
  })

  it('answers a JSON body over 64 KiB with 413 BODY_TOO_LARGE, whether its length is declared or not, and keeps serving', async () => {
    const socket = { socketPath: daemon.api }
    const big = JSON.stringify({ refs: ['x'.repeat(100 * 1024)] })
    const declared = await send(socket, 'POST', '/api/v1/rm', { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(big)) }, big)
    expect(declared.status).toBe(413)
    expect(errorCode(declared)).toBe('BODY_TOO_LARGE')
    const streamed = await send(socket, 'POST', '/api/v1/rm', { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, big)
    expect(streamed.status).toBe(413)
    expect(errorCode(streamed)).toBe('BODY_TOO_LARGE')
    const after = await send(socket, 'GET', '/api/v1/status', {})
    expect(after.status).toBe(200)
  })

  it('answers a path with a broken percent-escape with 400 naming it, not an internal error', async () => {
    const socket = { socketPath: daemon.api }
    for (const path of ['/api/v1/bundles/%E0%A4%A', '/api/v1/export/%ZZ']) {
      const answer = await send(socket, 'GET', path, {})
      expect(answer.status).toBe(400)
      expect(errorCode(answer)).toBe('REF_INVALID')
      expect(answer.body).toContain('percent-escape')
    }
  })

  it('is what the CLI finds by the data directory, with no --api', async () => {
    const result = await shoal(join(work, 'node'), ['--json', 'status'])
    expect(result.code).toBe(0)
    expect((JSON.parse(result.stdout) as { peerId: string }).peerId).toBe(daemon.peerId)
  })

  it('answers registry reads only when addressed to an IP, localhost or an allowed name: a rebinding page reads no image', async () => {
    // A page whose name the attacker resolves to 127.0.0.1 reads the answers as same-origin:
    // every image here, private ones pulled with the upstream's credentials too.
    const images = await generateImages(join(work, 'images'), { baseBytes: 256 * 1024, seed: 23 })
    await shoal(join(work, 'node'), ['push', images.layouts.app1 ?? ''])
    const registry = tcp(daemon.registry)
    const manifest = '/v2/shoal/app1/manifests/1.0?ns=registry.example.com'
    // What containerd sends (hosts.toml names 127.0.0.1:5050), and the other local spellings.
    for (const host of [daemon.registry, `localhost:${registry.port}`]) {
      expect((await send(registry, 'GET', manifest, { host })).status).toBe(200)
    }
    expect((await send(registry, 'GET', '/v2/', {})).status).toBe(200)
    for (const path of [manifest, '/v2/_catalog', '/v2/shoal/app1/tags/list?ns=registry.example.com', '/v2/']) {
      for (const method of ['GET', 'HEAD']) {
        const rebound = await send(registry, method, path, { host: `attacker.example:${registry.port}` })
        expect(rebound.status, `${method} ${path}`).toBe(403)
        if (method === 'GET') {
          const error = (JSON.parse(rebound.body) as { errors: Array<{ code: string, detail: { reason: string } }> }).errors[0]
          expect(error).toMatchObject({ code: 'DENIED', detail: { reason: 'HOST_REFUSED' } })
        }
      }
    }
  })

  it('logs a refused request once per kind with what to do: containerd only moves on to its next host', async () => {
    // A hosts.toml that names the mirror by a name the daemon was not given: before, every pull
    // went past the mirror (403, "trying next host") and the daemon's log said nothing.
    const registry = tcp(daemon.registry)
    const host = `mirror.example.com:${registry.port}`
    for (let i = 0; i < 3; i++) expect((await send(registry, 'HEAD', '/v2/shoal/app1/manifests/1.0?ns=registry.example.com', { host })).status).toBe(403)
    const refused = (): Array<Record<string, unknown>> => logLines(daemon).filter(l => l.msg === 'request refused' && l.host === host)
    await waitFor('the refusal in the log', async () => refused().length > 0 ? true : undefined, 10_000)
    expect(refused()).toHaveLength(1)
    expect(refused()[0]).toMatchObject({ level: 'warn', code: 'HOST_REFUSED', status: 403, reason: expect.stringContaining('--allowed-host mirror.example.com') })
  })

  it('serves the status page\'s read-only JSON on the registry listener, with the Host check', async () => {
    const registry = tcp(daemon.registry)
    const ok = await send(registry, 'GET', '/status.json', {})
    expect(ok.status).toBe(200)
    expect((JSON.parse(ok.body) as { peerId: string }).peerId).toBe(daemon.peerId)
    const rebound = await send(registry, 'GET', '/status.json', { host: 'attacker.example' })
    expect(rebound.status).toBe(403)
  })
})

describe('the control API over TCP', () => {
  const tempDir = useTempDirs()

  it('will not start without a token file, and says how to make one', async () => {
    const dir = await tempDir()
    const result = await shoal(dir, ['daemon', '--api', '127.0.0.1:0', '--registry', '127.0.0.1:0', '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain('--api-token-file')
    expect(result.stderr).toContain('CONFIG_INVALID')
  })

  it('refuses requests without the token or with a wrong one; the CLI sends it from --api-token-file', async () => {
    const dir = await tempDir()
    const tokenFile = join(dir, 'token')
    await writeFile(tokenFile, `${TOKEN}\n`)
    const daemon = await startDaemonProcess(join(dir, 'node'), ['--no-mdns', '--api', '127.0.0.1:0', '--api-token-file', tokenFile])
    try {
      const api = tcp(daemon.api)
      const without = await send(api, 'GET', '/api/v1/status', {})
      expect(without.status).toBe(401)
      expect(errorCode(without)).toBe('TOKEN_REQUIRED')
      const wrong = await send(api, 'GET', '/api/v1/status', { authorization: 'Bearer not-the-token-at-all' })
      expect(wrong.status).toBe(401)
      expect(errorCode(wrong)).toBe('TOKEN_INVALID')
      // A page cannot know the token; even a simple POST with it would be refused as text/plain.
      const plain = await send(api, 'POST', '/api/v1/gc', { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' }, '{}')
      expect(plain.status).toBe(415)
      const right = await send(api, 'GET', '/api/v1/status', { authorization: `Bearer ${TOKEN}` })
      expect(right.status).toBe(200)

      const noToken = await shoal(undefined, ['--api', daemon.api, 'ls'])
      expect(noToken.code).not.toBe(0)
      expect(noToken.stderr).toContain('TOKEN_REQUIRED')
      const withToken = await shoal(undefined, ['--api', `http://${daemon.api}`, '--api-token-file', tokenFile, '--json', 'status'])
      expect(withToken.code).toBe(0)
      expect((JSON.parse(withToken.stdout) as { peerId: string }).peerId).toBe(daemon.peerId)
    } finally {
      await daemon.stop()
    }
  })
})

describe('registry pushes (--allow-push)', () => {
  const tempDir = useTempDirs()

  it('take the token when one is set, and nothing else by default', async () => {
    const dir = await tempDir()
    const tokenFile = join(dir, 'token')
    await writeFile(tokenFile, TOKEN)
    const daemon = await startDaemonProcess(join(dir, 'node'), ['--no-mdns', '--allow-push', '--api-token-file', tokenFile])
    try {
      const registry = tcp(daemon.registry)
      const anonymous = await send(registry, 'POST', '/v2/registry.example.com/app/blobs/uploads/', {})
      expect(anonymous.status).toBe(401)
      expect((JSON.parse(anonymous.body) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('UNAUTHORIZED')
      const fromPage = await send(registry, 'POST', '/v2/registry.example.com/app/blobs/uploads/', { authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' })
      expect(fromPage.status).toBe(403)
      const started = await send(registry, 'POST', '/v2/registry.example.com/app/blobs/uploads/', { authorization: `Bearer ${TOKEN}` })
      expect(started.status).toBe(202)
      // Reads stay open: containerd sends no token.
      expect((await send(registry, 'GET', '/v2/', {})).status).toBe(200)
    } finally {
      await daemon.stop()
    }
  })

  it('take clients in --push-network without a token, and refuse others', async () => {
    const dir = await tempDir()
    const inside = await startDaemonProcess(join(dir, 'a'), ['--no-mdns', '--allow-push', '--push-network', '127.0.0.0/8'])
    const outside = await startDaemonProcess(join(dir, 'b'), ['--no-mdns', '--allow-push', '--push-network', '10.99.0.0/16'])
    try {
      expect((await send(tcp(inside.registry), 'POST', '/v2/registry.example.com/app/blobs/uploads/', {})).status).toBe(202)
      const refused = await send(tcp(outside.registry), 'POST', '/v2/registry.example.com/app/blobs/uploads/', {})
      expect(refused.status).toBe(401)
      expect(refused.body).toContain('127.0.0.1')
    } finally {
      await inside.stop()
      await outside.stop()
    }
  })

  it('refuses a bad --push-network at start, naming it', async () => {
    const dir = await tempDir()
    const result = await shoal(dir, ['daemon', '--registry', '127.0.0.1:0', '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--allow-push', '--push-network', '10.0.0.0/99'])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain('10.0.0.0/99')
  })
})
