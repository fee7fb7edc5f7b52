// The baseline: Debian's docker-registry on the gateway, every edge pulling with skopeo
// at the same moment. This is what a fleet without peer-to-peer gets: the gateway's
// link carries one copy per edge.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tcpReachable, type Host } from './bed.js'
import { compareWithSource } from './bundle.js'
import { EdgeRunner } from './edges.js'
import { inNetns, run, waitFor } from './proc.js'
import type { ProcessResult } from './results.js'
import { runTransfer, type ModeContext, type ModeOutcome, type NodeOutcome } from './transfer.js'

export const REGISTRY_PORT = 5000
const REGISTRY_BINARY = '/usr/bin/docker-registry'
const IMAGE = 'app:1.0'
const TIME_FORMAT = '%e %U %S %M'

export async function runRegistryMode (context: ModeContext): Promise<ModeOutcome> {
  const { bed, services, sampler, source, workDir, logDir, signal, options } = context
  const [gateway, ...edges] = bed.hosts
  if (gateway === undefined) throw new Error('no gateway host')
  const registryDir = join(workDir, 'registry')
  await mkdir(registryDir, { recursive: true })
  const configPath = join(workDir, 'registry.yml')
  await writeFile(configPath, registryConfig(registryDir, `${gateway.ip}:${REGISTRY_PORT}`))

  context.log(`starting docker-registry on ${gateway.ip}:${REGISTRY_PORT}`)
  const registry = await services.start('registry', inNetns(gateway.ns, [REGISTRY_BINARY, 'serve', configPath]), { logFile: join(logDir, 'n0.registry.log') })
  sampler.watch('registry', registry.pid)
  await waitFor('the registry to listen', async () => {
    if (!registry.running) throw new Error(`docker-registry exited (see ${logDir}/n0.registry.log)`)
    return await tcpReachable(gateway.ns, gateway.ip, REGISTRY_PORT, signal) ? true : undefined
  }, { timeoutMs: 30_000, signal })

  // Loading the image runs inside the gateway's namespace: it never crosses a shaped link.
  const imageRef = `docker://${gateway.ip}:${REGISTRY_PORT}/${IMAGE}`
  const sourceRef = source.ref === undefined ? `oci:${source.layout}` : `oci:${source.layout}:${source.ref}`
  context.log(`loading ${sourceRef} into the registry`)
  await run(inNetns(gateway.ns, ['skopeo', 'copy', '--quiet', '--all', '--dest-tls-verify=false', sourceRef, imageRef]), { signal, env: { ...process.env, TMPDIR: workDir } })

  const destinations = new Map<Host, string>()
  const runners = edges.map((host, i) => {
    const name = `n${i + 1}`
    const nodeDir = join(workDir, 'nodes', name)
    const dest = join(nodeDir, 'image')
    destinations.set(host, dest)
    return new EdgeRunner(host, name, {
      attempt: async (attemptSignal, attempt) => {
        await mkdir(nodeDir, { recursive: true })
        // /usr/bin/time reports the client's CPU and peak RSS once it exits; a killed attempt reports nothing.
        await run(inNetns(host.ns, ['/usr/bin/time', '-o', join(nodeDir, `time-${attempt}.txt`), '-f', TIME_FORMAT,
          'skopeo', 'copy', '--quiet', '--all', '--src-tls-verify=false', imageRef, `oci:${dest}:1.0`]),
        { signal: attemptSignal, env: { ...process.env, TMPDIR: nodeDir } })
      },
    })
  })

  const victim = runners.at(-1)
  const fault = options.faults === 'kill' && victim !== undefined
    ? {
        victim,
        kind: 'kill' as const,
        // A registry client does not resume: killing it loses the blob in flight.
        crash: async () => { victim.interrupt('skopeo killed (fault)'); return 'skopeo SIGKILLed and started again' },
      }
    : options.faults === 'partition' && victim !== undefined ? { victim, kind: 'partition' as const, crash: async () => '' } : undefined
  const transfer = await runTransfer({ context, runners, watched: ['registry'], fault })

  const nodes = new Map<Host, NodeOutcome>()
  const gatewayUsage = sampler.usage('registry')
  nodes.set(gateway, {
    role: 'gateway',
    name: 'n0',
    verified: true,
    problems: [],
    cpuSeconds: gatewayUsage === undefined ? null : gatewayUsage.cpuSeconds - (transfer.cpuAtStart.get('registry') ?? 0),
    peakRssBytes: gatewayUsage?.peakRssBytes ?? null,
  })
  for (const runner of runners) {
    const dest = destinations.get(runner.host) ?? ''
    const problems = runner.done ? await compareWithSource(source, dest) : [`never completed: ${runner.attemptErrors.join('; ') || 'no attempt finished'}`]
    const usage = await clientUsage(join(workDir, 'nodes', runner.name), runner.attempts)
    nodes.set(runner.host, { role: 'edge', name: runner.name, verified: runner.done && problems.length === 0, problems, ...usage })
  }

  const processes: ProcessResult[] = [{ name: 'docker-registry', node: 'n0', cpuSeconds: nodes.get(gateway)?.cpuSeconds ?? null, peakRssBytes: gatewayUsage?.peakRssBytes ?? null }]
  await registry.stop()
  const faults = transfer.fault === undefined || options.faults === 'none' ? [] : [{ kind: options.faults as 'kill' | 'partition', ...transfer.fault }]
  return { transfer, nodes, processes, faults, problems: [] }
}

function registryConfig (storageDir: string, addr: string): string {
  // The registry's own defaults otherwise: no auth, no TLS (the clients use *-tls-verify=false).
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storageDir}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${addr}`,
    '  secret: shoal-fleet-bed',
    '',
  ].join('\n')
}

/** CPU seconds (user + system) summed over the attempts that reported, and the largest peak RSS. */
async function clientUsage (nodeDir: string, attempts: number): Promise<{ cpuSeconds: number | null, peakRssBytes: number | null }> {
  let cpuSeconds: number | null = null
  let peakRssBytes: number | null = null
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let text: string
    try {
      text = await readFile(join(nodeDir, `time-${attempt}.txt`), 'utf8')
    } catch {
      continue
    }
    // A killed child makes time print "Command terminated by signal 9" first; the figures are on the last line.
    const fields = text.trim().split('\n').at(-1)?.split(' ').map(Number) ?? []
    const [, user, system, maxRssKb] = fields
    if (user === undefined || system === undefined || maxRssKb === undefined || fields.some(Number.isNaN)) continue
    cpuSeconds = (cpuSeconds ?? 0) + user + system
    peakRssBytes = Math.max(peakRssBytes ?? 0, maxRssKb * 1024)
  }
  return { cpuSeconds, peakRssBytes }
}
