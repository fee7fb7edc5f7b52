import { PlatformError } from './errors.js'
import type { NodeLabels } from './labels.js'

/** An OCI platform as an image index names it (image-spec `platform`: os, architecture, variant). */
export interface Platform {
  os: string
  architecture: string
  variant?: string
}

/** Node's `process.platform` → the OCI (GOOS) name an image index uses. */
const OS: Readonly<Record<string, string>> = { linux: 'linux', darwin: 'darwin', win32: 'windows', freebsd: 'freebsd', openbsd: 'openbsd', netbsd: 'netbsd', sunos: 'solaris', aix: 'aix', android: 'android' }
/** Node's `process.arch` → the OCI (GOARCH) name. Node's `ppc64` on Linux is little-endian (ppc64le). */
const ARCH: Readonly<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle', ppc64: 'ppc64le', riscv64: 'riscv64', s390x: 's390x' }

/**
 * The platform this process runs on, in OCI names; `armVersion` is Node's
 * `process.config.variables.arm_version` (`'7'` → variant `v7`), only meaningful on arm.
 */
export function detectPlatform (nodePlatform: string = process.platform, nodeArch: string = process.arch, armVersion: unknown = armVersionOfThisNode()): Platform {
  const platform: Platform = { os: OS[nodePlatform] ?? nodePlatform, architecture: ARCH[nodeArch] ?? nodeArch }
  if (nodeArch === 'arm' && (typeof armVersion === 'string' || typeof armVersion === 'number') && /^[5-8]$/.test(String(armVersion))) platform.variant = `v${String(armVersion)}`
  return platform
}

function armVersionOfThisNode (): unknown {
  return (process.config.variables as Record<string, unknown>).arm_version
}

/** The labels every node has without being told: `os`, `arch`, and `variant` where there is one. */
export function platformLabels (platform: Platform): NodeLabels {
  return { os: platform.os, arch: platform.architecture, ...(platform.variant !== undefined ? { variant: platform.variant } : {}) }
}

/** The platform a node's labels say it is (an operator may have corrected the detection). */
export function platformOfLabels (labels: NodeLabels): Platform | undefined {
  const os = labels.os
  const architecture = labels.arch
  if (os === undefined || architecture === undefined) return undefined
  return { os, architecture, ...(labels.variant !== undefined ? { variant: labels.variant } : {}) }
}

const PART = /^[a-z0-9][a-z0-9._-]{0,31}$/

/** `linux/arm64` or `linux/arm/v7`, as `docker --platform` and `ctr --platform` write it. */
export function parsePlatform (text: string): Platform {
  const parts = text.trim().split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some(p => !PART.test(p))) {
    throw new PlatformError(`platform ${JSON.stringify(text)} is not OS/ARCH or OS/ARCH/VARIANT in lowercase; write e.g. linux/amd64 or linux/arm/v7`)
  }
  const [os = '', architecture = '', variant] = parts
  return { os, architecture, ...(variant !== undefined ? { variant } : {}) }
}

export function formatPlatform (platform: Platform): string {
  return [platform.os, platform.architecture, ...(platform.variant !== undefined ? [platform.variant] : [])].join('/')
}

/**
 * Whether an image index entry's platform serves a node of `wanted`: os and architecture
 * equal; a variant only when both name one (an index entry `linux/arm64` without a variant
 * serves a `linux/arm64/v8` node, as containerd's matcher treats v8 as arm64's default).
 */
export function platformMatches (entry: Platform, wanted: Platform): boolean {
  if (entry.os !== wanted.os || entry.architecture !== wanted.architecture) return false
  return entry.variant === undefined || wanted.variant === undefined || entry.variant === wanted.variant
}
