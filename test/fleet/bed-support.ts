// What the fleet tests need of the machine, checked once so each test can say why it skips.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

function hasCommand (command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Why the network-namespace tests cannot run here, or undefined when they can. */
export function bedUnavailableReason (extra: Array<[command: string, debianPackage: string]> = []): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, tc, iptables)'
  const missing: string[] = []
  for (const [command, pkg] of [['ip', 'iproute2'], ['tc', 'iproute2'], ['iptables', 'iptables'], ['gcc', 'gcc'], ...extra] as Array<[string, string]>) {
    if (!hasCommand(command)) missing.push(pkg)
  }
  if (!existsSync('/usr/include/libnetfilter_queue/libnetfilter_queue.h')) missing.push('libnetfilter-queue-dev')
  if (missing.length > 0) return `missing Debian packages: ${[...new Set(missing)].join(' ')} (add them to .ci/run)`
  return undefined
}

export const REGISTRY_TOOLS: Array<[string, string]> = [['skopeo', 'skopeo'], ['docker-registry', 'docker-registry'], ['/usr/bin/time', 'time']]
