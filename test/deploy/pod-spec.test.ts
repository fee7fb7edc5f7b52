import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../helpers/daemon-process.js'
import { SHOAL_BIN, shebangEnv, shebangNodeFlags, shoalOk } from '../helpers/shoal-cli.js'
import { kubernetesDocuments, podSpecOf, type Container, type KubeDocument, type PodSpec } from './deploy-files.js'

const execFileAsync = promisify(execFile)

/** Root, with unshare and setpriv: a pod's own network namespace and its user, on this machine. */
function podsUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root'
  try {
    execFileSync('unshare', ['--net', '--mount', 'true'], { stdio: 'ignore' })
    execFileSync('setpriv', ['--help'], { stdio: 'ignore' })
    return undefined
  } catch {
    return 'unshare or setpriv missing'
  }
}

interface Pod {
  child: ChildProcess
  root: string
  /** A volume's directory on this machine. */
  volume: (name: string) => string
  /** GET from inside the pod's network namespace, as the kubelet's probes do. */
  get: (port: number | string, path: string) => Promise<{ status: number, body: string }>
  logs: () => string
}

/**
 * Runs a workload's pod as written: each init container's command, then the shoal container's
 * entrypoint (the Containerfile's: `shoal`) with its args and env, as its securityContext's
 * user, in a network namespace of its own (hostNetwork's fixed ports free). Volume mount paths
 * are mapped to directories here; ConfigMap and Secret values not given are absent, as in a
 * cluster where the optional ones were never created.
 */
async function runPod (workload: KubeDocument, documents: KubeDocument[], present: { secrets?: Record<string, Record<string, string>> } = {}): Promise<Pod> {
  const pod = podSpecOf(workload)
  const root = await mkdtemp(join(tmpdir(), 'shoal-pod-'))
  await chmod(root, 0o755)
  const volume = (name: string): string => join(root, name)
  for (const v of pod.volumes ?? []) {
    await mkdir(volume(v.name), { recursive: true })
    const data = v.configMap !== undefined ? documents.find(d => d.kind === 'ConfigMap' && d.metadata?.name === v.configMap?.name)?.data : v.secret !== undefined ? present.secrets?.[v.secret.secretName] : undefined
    for (const [key, value] of Object.entries(data ?? {})) await writeFile(join(volume(v.name), key), value)
  }
  for (const claim of workload.spec?.volumeClaimTemplates ?? []) await mkdir(volume(claim.metadata?.name ?? ''), { recursive: true })
  // fsGroup: the kubelet makes volumes group-owned and group-writable for the pod's user.
  const fsGroup = (pod as PodSpec & { securityContext?: { fsGroup?: number } }).securityContext?.fsGroup
  if (fsGroup !== undefined) {
    for (const name of [...(pod.volumes ?? []).filter(v => v.emptyDir !== undefined).map(v => v.name), ...(workload.spec?.volumeClaimTemplates ?? []).map(c => c.metadata?.name ?? '')]) {
      await chown(volume(name), 0, fsGroup)
      await chmod(volume(name), 0o2775)
    }
  }
  for (const init of pod.initContainers ?? []) {
    const [command = '', ...args] = [...init.command ?? [], ...init.args ?? []].map(a => mapPaths(a, init, volume))
    await execFileAsync(command, args, { env: { PATH: process.env.PATH } })
  }
  const shoal = pod.containers.find(c => c.name === 'shoal')
  if (shoal === undefined) throw new Error('no shoal container')
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: root }
  for (const e of shoal.env ?? []) {
    const ref = e.valueFrom?.configMapKeyRef ?? e.valueFrom?.secretKeyRef
    const value = ref === undefined ? e.value : e.valueFrom?.configMapKeyRef !== undefined ? documents.find(d => d.kind === 'ConfigMap' && d.metadata?.name === ref.name)?.data?.[ref.key] : present.secrets?.[ref.name]?.[ref.key]
    if (value !== undefined) env[e.name] = mapPaths(value, shoal, volume)
  }
  const user = shoal.securityContext
  const argv = (shoal.args ?? []).map(a => mapPaths(a, shoal, volume))
  const child = spawn('unshare', ['--net', 'sh', '-c', 'ip link set lo up && exec "$@"', 'pod',
    'setpriv', `--reuid=${user?.runAsUser ?? 0}`, `--regid=${user?.runAsGroup ?? 0}`, '--clear-groups', '--',
    process.execPath, ...shebangNodeFlags(), SHOAL_BIN, ...argv], { env: { ...env, ...shebangEnv() }, stdio: ['ignore', 'pipe', 'pipe'] })
  let logs = ''
  child.stdout?.setEncoding('utf8').on('data', (s: string) => { logs += s })
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { logs += s })
  const ports = new Map((shoal.ports ?? []).map(p => [p.name, p.containerPort]))
  const get = async (port: number | string, path: string): Promise<{ status: number, body: string }> => {
    const number = typeof port === 'number' ? port : ports.get(port)
    const { stdout } = await execFileAsync('nsenter', ['-t', String(child.pid), '-n', 'curl', '-s', '-m', '5', '-w', '\n%{http_code}', `http://127.0.0.1:${number}${path}`])
    const cut = stdout.lastIndexOf('\n')
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) }
  }
  return { child, root, volume, get, logs: () => logs }
}

/** A container's mount paths, rewritten to the volumes' directories here: whole paths only, in one pass. */
function mapPaths (text: string, container: Container, volume: (name: string) => string): string {
  const mounts = [...container.volumeMounts ?? []].sort((a, b) => b.mountPath.length - a.mountPath.length)
  if (mounts.length === 0) return text
  const escaped = mounts.map(m => m.mountPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  const pattern = new RegExp(`(?<![\\w./-])(${escaped.join('|')})(?=/|$|[^\\w.-])`, 'g')
  return text.replace(pattern, path => volume(mounts.find(m => m.mountPath === path)?.name ?? ''))
}

async function stopPod (pod: Pod): Promise<void> {
  if (pod.child.exitCode === null && pod.child.signalCode === null) {
    const exited = once(pod.child, 'exit')
    pod.child.kill('SIGTERM')
    await exited
  }
  await rm(pod.root, { recursive: true, force: true })
}

function probeOf (pod: PodSpec, which: 'readinessProbe' | 'livenessProbe'): { port: number | string, path: string } {
  const probe = pod.containers.find(c => c.name === 'shoal')?.[which]?.httpGet
  return { port: probe?.port ?? 0, path: probe?.path ?? '' }
}

describe.skipIf(podsUnavailable() !== undefined)('the workloads in deploy/kubernetes run as written', () => {
  const pods: Pod[] = []
  afterEach(async () => {
    for (const pod of pods.splice(0)) await stopPod(pod)
  })

  it('the edge DaemonSet starts without any optional Secret or ConfigMap: alive, not ready alone (saying why), serving the mirror and metrics', async () => {
    const documents = (await kubernetesDocuments()).map(d => d.doc)
    const edge = documents.find(d => d.kind === 'DaemonSet')
    if (edge === undefined) throw new Error('no DaemonSet')
    const pod = await runPod(edge, documents)
    pods.push(pod)
    const spec = podSpecOf(edge)
    const liveness = probeOf(spec, 'livenessProbe')
    await waitFor('the edge to answer its liveness probe', async () => (await pod.get(liveness.port, liveness.path)).status === 200 ? true : undefined, 30_000).catch((err: Error) => { throw new Error(`${err.message}\n${pod.logs()}`) })
    const readiness = probeOf(spec, 'readinessProbe')
    const ready = await pod.get(readiness.port, readiness.path)
    expect(ready.status).toBe(503)
    expect(ready.body).toContain('FAIL swarm: no peer connected')
    expect(ready.body).toContain('ok store: writable')
    expect((await pod.get(5050, '/v2/')).status).toBe(200)
    expect((await pod.get('metrics', '/metrics')).body).toContain('shoal_http_requests_total')
    // The init container wrote containerd's mirror config, and the daemon's config without a swarm key.
    expect(await readFile(join(pod.volume('containerd-certs'), 'docker.io', 'hosts.toml'), 'utf8')).toContain('[host."http://127.0.0.1:5050"]')
    expect(JSON.parse(await readFile(join(pod.volume('run'), 'config.json'), 'utf8'))).toEqual({})
    // And what the open fleet costs: the gateway's upstream does not serve the edges' misses.
    expect(pod.logs()).toMatch(/no swarm key: .*this node neither asks the fleet's nodes with an upstream to pull its misses through/)
    // It ran as the manifest's user, which owns the data dir the init container handed over.
    expect((await stat(join(pod.volume('data'), 'api.sock'))).uid).toBe(1000)
    expect(await shoalOk(undefined, ['--api', join(pod.volume('data'), 'api.sock'), 'ls'])).toBe('')
  })

  it('the edge picks up the swarm key when its Secret exists, and the gateway is ready alone', async () => {
    const documents = (await kubernetesDocuments()).map(d => d.doc)
    const keyDir = await mkdtemp(join(tmpdir(), 'shoal-key-'))
    await shoalOk(undefined, ['keygen', 'swarm', join(keyDir, 'swarm.key')])
    const swarmKey = await readFile(join(keyDir, 'swarm.key'), 'utf8')
    await rm(keyDir, { recursive: true, force: true })
    const edge = documents.find(d => d.kind === 'DaemonSet')
    const gateway = documents.find(d => d.kind === 'StatefulSet')
    if (edge === undefined || gateway === undefined) throw new Error('no DaemonSet or StatefulSet')
    const keyed = await runPod(edge, documents, { secrets: { 'shoal-swarm-key': { 'swarm.key': swarmKey } } })
    pods.push(keyed)
    await waitFor('the keyed edge to be alive', async () => (await keyed.get('metrics', '/healthz')).status === 200 ? true : undefined, 30_000).catch((err: Error) => { throw new Error(`${err.message}\n${keyed.logs()}`) })
    expect(JSON.parse(await readFile(join(keyed.volume('run'), 'config.json'), 'utf8'))).toEqual({ swarmKey: join(keyed.volume('swarm-key'), 'swarm.key') })
    expect(keyed.logs()).not.toContain('no swarm key')

    const gw = await runPod(gateway, documents)
    pods.push(gw)
    const readiness = probeOf(podSpecOf(gateway), 'readinessProbe')
    const ready = await waitFor('the gateway to be ready', async () => {
      const answer = await gw.get(readiness.port, readiness.path)
      return answer.status === 200 ? answer : undefined
    }, 30_000).catch((err: Error) => { throw new Error(`${err.message}\n${gw.logs()}`) })
    expect(ready.body).toContain('ok swarm: gateway')
  })
})
