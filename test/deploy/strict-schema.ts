import { join } from 'node:path'
import ts from 'typescript'

const ROOT = join(import.meta.dirname, '..', '..')

/**
 * The Kubernetes types (kubernetes-models, generated from the API's OpenAPI schemas) each kind
 * of these manifests is checked against. Their validate() checks types but lets unknown keys
 * through; the TypeScript types of the same schemas close every object, so a misspelt key is
 * an excess property anywhere in the document.
 */
const TYPES: Record<string, { from: string, type: string }> = {
  'v1/Namespace': { from: 'kubernetes-models/v1/Namespace', type: 'INamespace' },
  'v1/ConfigMap': { from: 'kubernetes-models/v1/ConfigMap', type: 'IConfigMap' },
  'v1/Service': { from: 'kubernetes-models/v1/Service', type: 'IService' },
  'apps/v1/DaemonSet': { from: 'kubernetes-models/apps/v1/DaemonSet', type: 'IDaemonSet' },
  'apps/v1/StatefulSet': { from: 'kubernetes-models/apps/v1/StatefulSet', type: 'IStatefulSet' },
  'monitoring.coreos.com/v1/ServiceMonitor': { from: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', type: 'IServiceMonitor' },
}

export interface StrictCheckDocument { name: string, doc: { apiVersion?: unknown, kind?: unknown } }

/**
 * What TypeScript finds wrong with each document typed as its kind, as `name: message`
 * lines: unknown fields (excess properties, at any depth) and wrong types. One document per
 * line of a generated module, so a diagnostic's line says whose it is.
 */
export function strictSchemaErrors (documents: StrictCheckDocument[]): string[] {
  const imports = new Map<string, string>()
  const lines: string[] = []
  for (const [i, { name, doc }] of documents.entries()) {
    const kind = TYPES[`${String(doc.apiVersion)}/${String(doc.kind)}`]
    if (kind === undefined) throw new Error(`${name}: no Kubernetes type for ${String(doc.apiVersion)} ${String(doc.kind)}`)
    imports.set(kind.type, kind.from)
    lines[i] = `export const doc${i}: ${kind.type} = ${JSON.stringify(doc)}`
  }
  const header = [...imports].map(([type, from]) => `import type { ${type} } from '${from}'`)
  const file = join(ROOT, 'test', 'deploy', '__strict-schema-check__.ts')
  const text = [...header, ...lines].join('\n') + '\n'
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, noEmit: true, skipLibCheck: true, types: [],
  }
  const host = ts.createCompilerHost(options)
  const readFile = host.readFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  const getSourceFile = host.getSourceFile.bind(host)
  host.readFile = path => path === file ? text : readFile(path)
  host.fileExists = path => path === file || fileExists(path)
  host.getSourceFile = (path, language, ...rest) => path === file ? ts.createSourceFile(path, text, language) : getSourceFile(path, language, ...rest)
  const program = ts.createProgram([file], options, host)
  return ts.getPreEmitDiagnostics(program).map(d => {
    const line = d.file === undefined || d.start === undefined ? -1 : d.file.getLineAndCharacterOfPosition(d.start).line - header.length
    return `${documents[line]?.name ?? '(module)'}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
}
