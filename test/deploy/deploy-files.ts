import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import YAML from 'yaml'

export const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy')

export interface Container {
  name: string
  image?: string
  command?: string[]
  args?: string[]
  env?: Array<{ name: string, value?: string, valueFrom?: { secretKeyRef?: { name: string, key: string, optional?: boolean }, configMapKeyRef?: { name: string, key: string, optional?: boolean } } }>
  ports?: Array<{ name?: string, containerPort: number }>
  volumeMounts?: Array<{ name: string, mountPath: string, readOnly?: boolean }>
  readinessProbe?: { httpGet?: { path?: string, port?: number | string } }
  livenessProbe?: { httpGet?: { path?: string, port?: number | string } }
  securityContext?: { runAsUser?: number, runAsGroup?: number }
}

export interface PodSpec {
  initContainers?: Container[]
  containers: Container[]
  volumes?: Array<{ name: string, secret?: { secretName: string, optional?: boolean }, configMap?: { name: string, optional?: boolean }, hostPath?: { path: string }, emptyDir?: object }>
}

export interface KubeDocument {
  apiVersion: string
  kind: string
  metadata?: { name?: string, namespace?: string, labels?: Record<string, string> }
  spec?: Record<string, unknown> & { template?: { spec: PodSpec }, volumeClaimTemplates?: Array<{ metadata?: { name?: string } }> }
  data?: Record<string, string>
}

/** Every document of every manifest in deploy/kubernetes, parsed. */
export async function kubernetesDocuments (): Promise<Array<{ file: string, doc: KubeDocument }>> {
  const dir = join(DEPLOY, 'kubernetes')
  const out: Array<{ file: string, doc: KubeDocument }> = []
  for (const file of (await readdir(dir)).filter(f => f.endsWith('.yaml')).sort()) {
    for (const document of YAML.parseAllDocuments(await readFile(join(dir, file), 'utf8'))) {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map(e => e.message).join('; ')}`)
      const doc = document.toJSON() as KubeDocument | null
      if (doc !== null) out.push({ file, doc })
    }
  }
  return out
}

export function podSpecOf (workload: KubeDocument): PodSpec {
  const spec = workload.spec?.template?.spec
  if (spec === undefined) throw new Error(`${workload.kind} ${workload.metadata?.name ?? ''} has no pod template`)
  return spec
}
