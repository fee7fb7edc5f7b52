import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { removeLink, startShapedLink, type ShapedLink } from '../../scripts/bench-link.js'
import { run } from '../../scripts/fleet/proc.js'
import { listNetns } from '../../scripts/fleet/runs.js'
import { startHttpCapture } from '../../scripts/http-capture.js'
import { useTempDirs } from '../helpers/temp-dir.js'
import { startDockerRegistry, type RegistryProcess } from '../upstream/docker-registry.js'
import { bedUnavailableReason } from './bed-support.js'

const unavailable = bedUnavailableReason([['tcpdump', 'tcpdump'], ['docker-registry', 'docker-registry']])
const skipNote = unavailable === undefined ? '' : ` [skipped: ${unavailable}]`
const BODY_BYTES = 3 * 1024 * 1024 + 7
const PORT = 8080
const SERVER_START_TIMEOUT_MS = 20_000

/** A name of the test's own: the bench's (`linkbench`) may be in use by a bench on this machine. */
const testName = (): string => `lt${randomBytes(4).toString('hex')}`

/** A plain HTTP server inside the link's namespace on its veth address, answering every GET with BODY_BYTES. */
async function serveInside (link: ShapedLink): Promise<ChildProcess> {
  const script = `require('node:http').createServer((q, r) => { r.writeHead(200, { 'content-length': ${BODY_BYTES} }); r.end(Buffer.alloc(${BODY_BYTES}, 7)) }).listen(${PORT}, '${link.nsIp}', () => { console.log('up') })`
  const [command = 'ip', ...args] = [...link.wrap, process.execPath, '-e', script]
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const timeout = AbortSignal.timeout(SERVER_START_TIMEOUT_MS)
  await once(child.stdout, 'data', { signal: timeout })
  return child
}

async function mtuOf (prefix: string[], dev: string): Promise<number | undefined> {
  const { stdout } = await run([...prefix, 'ip', '-j', 'link', 'show', 'dev', dev])
  return (JSON.parse(stdout) as Array<{ mtu?: number }>)[0]?.mtu
}

async function qdiscKinds (prefix: string[], dev: string): Promise<string[]> {
  const { stdout } = await run([...prefix, 'tc', '-j', 'qdisc', 'show', 'dev', dev])
  return (JSON.parse(stdout) as Array<{ kind: string }>).map(q => q.kind)
}

/** The containerd bench's shaped link (scripts/bench-link.ts, `--link-mbit`). */
describe.skipIf(unavailable !== undefined)(`the containerd bench's source behind a shaped veth${skipNote}`, () => {
  const tempDir = useTempDirs()
  const names: string[] = []
  let registry: RegistryProcess | undefined
  afterEach(async () => {
    await registry?.stop()
    registry = undefined
    for (const name of names.splice(0)) await removeLink(name)
  })

  it('serves a client on the machine from the namespace over the veth, tbf on both ends, seen by a capture of the veth; close leaves nothing', async () => {
    const name = testName()
    names.push(name)
    const link = await startShapedLink(200, { name })
    expect(await mtuOf([], link.rootIf)).toBe(1500)
    expect(await qdiscKinds([], link.rootIf)).toContain('tbf')
    expect(await qdiscKinds(link.wrap, `${name}1`)).toContain('tbf')

    // docker-registry where the bench puts it: inside, on the veth's address (it answered GET /v2/ from here to start).
    registry = await startDockerRegistry(join(await tempDir('shoal-link-registry-'), 'registry'), '', { host: link.nsIp, wrap: link.wrap })
    expect(registry.host.startsWith(`${link.nsIp}:`)).toBe(true)
    expect((await run(['ip', 'netns', 'pids', name])).stdout.split(/\s+/)).toContain(String(registry.child.pid))

    const server = await serveInside(link)
    const capture = await startHttpCapture(PORT, join(await tempDir('shoal-link-capture-'), 'seen.pcap'), { iface: link.rootIf, host: link.nsIp })
    const before = await link.receivedBytes()
    const response = await fetch(`http://${link.nsIp}:${PORT}/v2/app/blobs/sha256:aa`)
    const body = Buffer.from(await response.arrayBuffer())
    const crossed = await link.receivedBytes() - before
    const seen = await capture.stop()

    expect(body.length).toBe(BODY_BYTES)
    expect(crossed).toBeGreaterThanOrEqual(BODY_BYTES)
    const blob = seen.find(r => r.url === '/v2/app/blobs/sha256:aa')
    expect(blob).toMatchObject({ method: 'GET', status: 200, bytes: BODY_BYTES })
    expect(blob?.endedAt).toBeGreaterThanOrEqual(blob?.firstByteAt ?? Infinity)

    await registry.stop()
    registry = undefined
    const exited = once(server, 'exit')
    expect(await link.close()).toEqual([])
    await exited
    expect(await listNetns()).not.toContain(name)
    expect((await run(['ip', 'link', 'show', `${name}0`], { allowFailure: true })).code).not.toBe(0)
  })

  it('removes a link an earlier run left, with what ran in it, before making its own (unshaped, another MTU, then reshaped)', async () => {
    const name = testName()
    names.push(name)
    const earlier = await startShapedLink(0, { name })
    const leftover = await serveInside(earlier)
    const exited = once(leftover, 'exit')

    const link = await startShapedLink(0, { name, mtu: 9000 })
    await exited
    // Not shaped: the veth has no tbf.
    expect(await qdiscKinds([], link.rootIf)).not.toContain('tbf')
    expect([await mtuOf([], link.rootIf), await mtuOf(link.wrap, `${name}1`)]).toEqual([9000, 9000])
    // Reshaped between pulls: tbf on both ends, then off again.
    await link.setRate(300)
    expect([await qdiscKinds([], link.rootIf), await qdiscKinds(link.wrap, `${name}1`)]).toEqual([['tbf'], ['tbf']])
    await link.setRate(0)
    expect([...await qdiscKinds([], link.rootIf), ...await qdiscKinds(link.wrap, `${name}1`)]).not.toContain('tbf')
    const server = await serveInside(link)
    const response = await fetch(`http://${link.nsIp}:${PORT}/`)
    expect((await response.arrayBuffer()).byteLength).toBe(BODY_BYTES)
    const serverExited = once(server, 'exit')
    expect(await link.close()).toEqual([])
    await serverExited
  })

  it('refuses a rate that is not a number of Mbit/s, an MTU IPv4 cannot use, and a name too long for an interface', async () => {
    await expect(startShapedLink(-1, { name: testName() })).rejects.toThrow(/--link-mbit takes a rate in Mbit\/s/)
    await expect(startShapedLink(Number('x'), { name: testName() })).rejects.toThrow(/--link-mbit takes a rate in Mbit\/s/)
    await expect(startShapedLink(100, { name: 'a-name-too-long-for' })).rejects.toThrow(/at most 14 characters/)
    await expect(startShapedLink(100, { name: testName(), mtu: 100 })).rejects.toThrow(/--link-mtu takes 576 to 65535 bytes/)
  })
})
