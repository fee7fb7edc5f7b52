import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet'
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Namespace } from 'kubernetes-models/v1/Namespace'
import { Service } from 'kubernetes-models/v1/Service'
import { DEPLOY, kubernetesDocuments, podSpecOf, type KubeDocument } from './deploy-files.js'
import { strictSchemaErrors } from './strict-schema.js'

const execFileAsync = promisify(execFile)

/** The Kubernetes API's own schemas (kubernetes-models), one per kind these manifests use. */
const MODELS: Record<string, new (data: never) => { validate: () => void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/StatefulSet': StatefulSet,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
}

describe('every file in deploy/ is checked', () => {
  it('knows each file, so a new one cannot ship unchecked', async () => {
    const files = (await readdir(DEPLOY, { recursive: true, withFileTypes: true })).filter(e => e.isFile()).map(e => join(e.parentPath, e.name).slice(DEPLOY.length + 1)).sort()
    expect(files).toEqual([
      'Containerfile',
      'containerd/certs.d/_default/hosts.toml',
      'containerd/certs.d/docker.io/hosts.toml',
      'k3s/registries.yaml',
      'kubernetes/edge-daemonset.yaml',
      'kubernetes/gateway.yaml',
      'kubernetes/monitoring.yaml',
      'kubernetes/namespace.yaml',
      'shoal.service',
    ])
  })
})

describe('the Kubernetes manifests', () => {
  it('are valid against the Kubernetes schemas, every document', async () => {
    const documents = await kubernetesDocuments()
    expect(documents.length).toBeGreaterThanOrEqual(7)
    for (const { file, doc } of documents) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`]
      expect(Model, `${file}: no schema for ${doc.apiVersion} ${doc.kind}`).toBeDefined()
      expect(() => { new (Model as NonNullable<typeof Model>)(doc as never).validate() }, `${file}: ${doc.kind} ${doc.metadata?.name}`).not.toThrow()
    }
  })

  it('have no field the Kubernetes schemas do not know, at any depth (a misspelt key would pass validate())', async () => {
    const documents = (await kubernetesDocuments()).map(({ file, doc }) => ({ name: `${file}: ${doc.kind} ${doc.metadata?.name ?? ''}`, doc }))
    expect(strictSchemaErrors(documents)).toEqual([])
  })

  it('the strict check is not a stub: a misspelt key anywhere is refused, naming it, where validate() takes it', async () => {
    const { doc } = (await kubernetesDocuments()).find(d => d.doc.kind === 'DaemonSet') ?? {}
    const misspelt = (mutate: (d: KubeDocument & Record<string, unknown>) => void): KubeDocument => {
      const copy = structuredClone(doc) as KubeDocument & Record<string, unknown>
      mutate(copy)
      return copy
    }
    const cases: Array<[string, KubeDocument]> = [
      ['imagePullPolicyy', misspelt(d => { Object.assign(podSpecOf(d).containers[0] ?? {}, { imagePullPolicyy: 'Always' }) })],
      ['lables', misspelt(d => { Object.assign(d.metadata ?? {}, { lables: { app: 'x' } }) })],
      ['updateStrategyy', misspelt(d => { Object.assign(d.spec ?? {}, { updateStrategyy: {} }) })],
      ['specs', misspelt(d => { d.specs = d.spec })],
    ]
    for (const [key, broken] of cases) {
      expect(() => { new DaemonSet(broken as never).validate() }, key).not.toThrow()
      const errors = strictSchemaErrors([{ name: key, doc: broken }])
      expect(errors, key).toHaveLength(1)
      expect(errors[0], key).toContain(`'"${key}"' does not exist in type`)
    }
  }, 60_000)

  it('the schema check is not a stub: a wrong type is refused', async () => {
    const { doc } = (await kubernetesDocuments()).find(d => d.doc.kind === 'DaemonSet') ?? {}
    const broken = structuredClone(doc) as KubeDocument
    const container = podSpecOf(broken).containers[0] as { ports: Array<{ containerPort: unknown }> }
    container.ports[0] = { containerPort: 'five thousand' }
    expect(() => { new DaemonSet(broken as never).validate() }).toThrow(/containerPort/)
  })

  it('hang together: probes on declared ports, /readyz and /healthz; mounts name volumes; only optional refs to Secrets and ConfigMaps not shipped here', async () => {
    const documents = (await kubernetesDocuments()).map(d => d.doc)
    const shippedConfigMaps = new Set(documents.filter(d => d.kind === 'ConfigMap').map(d => d.metadata?.name))
    for (const workload of documents.filter(d => d.kind === 'DaemonSet' || d.kind === 'StatefulSet')) {
      const pod = podSpecOf(workload)
      const volumes = new Set([...(pod.volumes ?? []).map(v => v.name), ...(workload.spec?.volumeClaimTemplates ?? []).map(v => v.metadata?.name)])
      for (const volume of pod.volumes ?? []) {
        if (volume.secret !== undefined) expect(volume.secret.optional, `${volume.name}: a missing Secret must not stop the pod`).toBe(true)
        if (volume.configMap !== undefined) expect(shippedConfigMaps.has(volume.configMap.name) || volume.configMap.optional === true).toBe(true)
      }
      for (const container of [...pod.initContainers ?? [], ...pod.containers]) {
        for (const mount of container.volumeMounts ?? []) expect(volumes.has(mount.name), `${container.name} mounts ${mount.name}`).toBe(true)
        for (const env of container.env ?? []) {
          const ref = env.valueFrom?.secretKeyRef ?? env.valueFrom?.configMapKeyRef
          if (ref !== undefined && !shippedConfigMaps.has(ref.name)) expect(ref.optional, `${env.name} from ${ref.name}`).toBe(true)
        }
      }
      const shoal = pod.containers.find(c => c.name === 'shoal')
      const ports = new Map((shoal?.ports ?? []).map(p => [p.name, p.containerPort]))
      expect(shoal?.readinessProbe?.httpGet?.path).toBe('/readyz')
      expect(shoal?.livenessProbe?.httpGet?.path).toBe('/healthz')
      for (const probe of [shoal?.readinessProbe, shoal?.livenessProbe]) {
        const port = probe?.httpGet?.port
        expect(typeof port === 'number' ? [...ports.values()].includes(port) : ports.has(String(port))).toBe(true)
        // The metrics listener, which the daemon binds where the kubelet can reach it.
        expect(typeof port === 'number' ? port : ports.get(String(port))).toBe(9090)
      }
      expect(shoal?.args).toEqual(expect.arrayContaining(['--metrics', '0.0.0.0:9090']))
    }
    const monitor = documents.find(d => d.kind === 'ServiceMonitor')
    const service = documents.find(d => d.kind === 'Service' && d.metadata?.name === 'shoal-metrics')
    const endpointPort = (monitor?.spec?.endpoints as Array<{ port: string }> | undefined)?.[0]?.port
    expect((service?.spec?.ports as Array<{ name: string }>).map(p => p.name)).toContain(endpointPort)
    expect(service?.metadata?.labels).toMatchObject((monitor?.spec?.selector as { matchLabels: Record<string, string> }).matchLabels)
  })
})

describe('the k3s registries.yaml', () => {
  it('sends docker.io and every other registry to the local mirror first', async () => {
    const parsed = YAML.parse(await readFile(join(DEPLOY, 'k3s', 'registries.yaml'), 'utf8')) as { mirrors: Record<string, { endpoint: string[] }> }
    expect(Object.keys(parsed)).toEqual(['mirrors'])
    expect(parsed.mirrors['docker.io']?.endpoint).toEqual(['http://127.0.0.1:5050'])
    expect(parsed.mirrors['*']?.endpoint).toEqual(['http://127.0.0.1:5050'])
  })
})

describe('the systemd unit', () => {
  it('passes systemd-analyze verify (with ExecStart pointed at this checkout)', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const dir = await mkdtemp(join(tmpdir(), 'shoal-unit-'))
    try {
      const unit = (await readFile(join(DEPLOY, 'shoal.service'), 'utf8')).replaceAll('ExecStart=/usr/bin/shoal', `ExecStart=${join(DEPLOY, '..', 'bin', 'shoal.js')}`)
      await writeFile(join(dir, 'shoal.service'), unit)
      const result = await execFileAsync('systemd-analyze', ['verify', join(dir, 'shoal.service')]).then(r => ({ code: 0, stderr: r.stderr }), (err: { code: number, stderr: string }) => ({ code: err.code, stderr: err.stderr }))
      expect(result.stderr.split('\n').filter(l => l.includes('shoal.service'))).toEqual([])
      expect(result.code).toBe(0)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('the store\'s bound, as shipped', () => {
  // Before: only the gateway had one. An edge's store (a hostPath, or /var/lib under the unit)
  // grew until the disk was full, which on a Kubernetes node is the kubelet's DiskPressure.
  it('is set for every daemon the deploy files run: the edge DaemonSet, the gateway and the unit', async () => {
    const { parseSize } = await import('../../src/daemon/index.js')
    const documents = (await kubernetesDocuments()).map(d => d.doc)
    const workloads = documents.filter(d => d.kind === 'DaemonSet' || d.kind === 'StatefulSet')
    expect(workloads.map(w => w.kind).sort()).toEqual(['DaemonSet', 'StatefulSet'])
    for (const workload of workloads) {
      const args = (podSpecOf(workload).containers.find(c => c.name === 'shoal') as { args?: string[] } | undefined)?.args ?? []
      expect(args, workload.kind).toContain('--quota')
      expect(parseSize(args[args.indexOf('--quota') + 1] ?? ''), workload.kind).toBeGreaterThan(0)
    }
    const unit = await readFile(join(DEPLOY, 'shoal.service'), 'utf8')
    const quota = /^Environment=SHOAL_QUOTA=(\S+)$/m.exec(unit)?.[1] ?? /^ExecStart=.* --quota (\S+)/m.exec(unit)?.[1]
    expect(parseSize(quota ?? ''), 'the unit').toBeGreaterThan(0)
  })
})

describe('the Containerfile', () => {
  it('copies only what exists here, and its entrypoint and command are a daemon invocation the CLI accepts', async () => {
    const text = await readFile(join(DEPLOY, 'Containerfile'), 'utf8')
    const copies = [...text.matchAll(/^COPY (.+) \S+$/gm)].flatMap(m => (m[1] ?? '').split(/\s+/))
    expect(copies.length).toBeGreaterThan(3)
    const { access } = await import('node:fs/promises')
    for (const source of copies) await access(join(DEPLOY, '..', source))
    expect(/^ENTRYPOINT \["\/usr\/bin\/shoal"\]$/m.test(text)).toBe(true)
    const cmd = JSON.parse(/^CMD (.+)$/m.exec(text)?.[1] ?? '[]') as string[]
    expect(cmd[0]).toBe('daemon')
    // The settings resolve (no listener is opened): the same check the daemon makes at start.
    const { resolveConfig } = await import('../../src/daemon/index.js')
    const flags = { registry: cmd[cmd.indexOf('--registry') + 1], listen: [cmd[cmd.indexOf('--listen') + 1] ?? ''] }
    expect(resolveConfig({ flags, env: { dataDir: '/var/lib/shoal' }, file: {} }, '/var/lib/shoal').registry).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 5050 })
  })
})

describe('the data lane port, as shipped', () => {
  /** Where the swarm puts the lane for a listen address and no --lane-port: what every file must declare. */
  const laneOf = async (listen: string): Promise<number | undefined> => {
    const { laneListenOf } = await import('../../src/swarm/lane-listen.js')
    return laneListenOf([listen])?.port
  }

  it('is declared wherever libp2p\'s port is: the Containerfile, each workload and the gateway Service', async () => {
    const text = await readFile(join(DEPLOY, 'Containerfile'), 'utf8')
    const cmd = JSON.parse(/^CMD (.+)$/m.exec(text)?.[1] ?? '[]') as string[]
    const lane = await laneOf(cmd[cmd.indexOf('--listen') + 1] ?? '')
    expect(lane).toBe(4002)
    expect(/^EXPOSE (.+)$/m.exec(text)?.[1]?.split(/\s+/)).toContain(String(lane))
    const documents = (await kubernetesDocuments()).map(d => d.doc)
    for (const workload of documents.filter(d => d.kind === 'DaemonSet' || d.kind === 'StatefulSet')) {
      const shoal = podSpecOf(workload).containers.find(c => c.name === 'shoal')
      const args = (shoal as { args?: string[] } | undefined)?.args ?? []
      const ports = new Map((shoal?.ports ?? []).map(p => [p.name, p.containerPort]))
      expect(ports.get('lane'), workload.kind).toBe(await laneOf(args[args.indexOf('--listen') + 1] ?? ''))
    }
    const gateway = documents.find(d => d.kind === 'Service' && (d.spec?.ports as Array<{ name: string }> | undefined)?.some(p => p.name === 'libp2p') === true)
    expect((gateway?.spec?.ports as Array<{ name: string, port: number }>).find(p => p.name === 'lane')?.port).toBe(4002)
  })
})
