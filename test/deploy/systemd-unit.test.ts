import { execFile, execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { constants, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoalOk } from '../helpers/shoal-cli.js'
import { DOCKER_REGISTRY_BIN, startDockerRegistry, type RegistryProcess } from '../upstream/docker-registry.js'
import { DEPLOY } from './deploy-files.js'

const execFileAsync = promisify(execFile)
const LIBSECCOMP = '/usr/lib/x86_64-linux-gnu/libseccomp.so.2'
/** A uid and gid no one has, as DynamicUser= gives the service. */
const SERVICE_ID = 61_874

function unavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (to drop to the unit\'s unprivileged user)'
  for (const tool of ['gcc', 'systemd-analyze', 'setpriv']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    } catch {
      return `needs ${tool}`
    }
  }
  if (!existsSync(LIBSECCOMP)) return `needs ${LIBSECCOMP}`
  if (!existsSync(DOCKER_REGISTRY_BIN)) return `needs ${DOCKER_REGISTRY_BIN}`
  return undefined
}

/** The syscalls a group (or a name) of `systemd-analyze syscall-filter` stands for, nested groups expanded. */
function expand (entry: string, seen = new Set<string>()): string[] {
  if (!entry.startsWith('@')) return [entry]
  if (seen.has(entry)) return []
  seen.add(entry)
  const listed = execFileSync('systemd-analyze', ['syscall-filter', entry], { encoding: 'utf8' })
    .split('\n').slice(1).map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))
  if (listed.length === 0) throw new Error(`systemd-analyze lists nothing for ${entry}`)
  return listed.flatMap(name => expand(name, seen))
}

/**
 * What systemd lets the service call, from the unit's SystemCallFilter= lines as systemd reads
 * them: the first line without `~` makes an allow-list (to which systemd adds @default), later
 * lines add to it, lines with `~` take from it.
 */
function allowedSyscalls (unit: string): Set<string> {
  const allowed = new Set<string>(expand('@default'))
  for (const [, value = ''] of unit.matchAll(/^SystemCallFilter=(.*)$/gm)) {
    const deny = value.startsWith('~')
    for (const entry of value.replace(/^~/, '').split(/\s+/).filter(Boolean)) {
      for (const name of expand(entry)) {
        if (deny) allowed.delete(name)
        else allowed.add(name)
      }
    }
  }
  return allowed
}

/**
 * deploy/shoal.service's sandbox as far as it can be had without systemd as PID 1: its
 * SystemCallFilter= (what systemd-analyze says each group holds, with systemd's action for what
 * is not allowed: SIGSYS, or SystemCallErrorNumber=), an unprivileged user as DynamicUser=
 * gives, no capabilities (CapabilityBoundingSet=), NoNewPrivileges= and its UMask=. The
 * daemon runs under it with the unit's own flags and serves what a gateway serves.
 */
describe.skipIf(unavailable() !== undefined)(`deploy/shoal.service's sandbox${unavailable() === undefined ? '' : ` (skipped: ${unavailable()})`}`, () => {
  let work: string
  let unit: string
  let launcher: string
  let registry: RegistryProcess
  let layout: string
  const daemons: DaemonProcess[] = []

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-unit-sandbox-'))
    // The service's user must reach the launcher, the allow-list and its own directories.
    await chmod(work, 0o755)
    unit = await readFile(join(DEPLOY, 'shoal.service'), 'utf8')
    launcher = join(work, 'seccomp-launch')
    await execFileAsync('gcc', ['-O2', '-o', launcher, join(import.meta.dirname, 'seccomp-launch.c'), `-l:${LIBSECCOMP.split('/').pop() ?? ''}`])
    await writeFile(join(work, 'allowed'), [...allowedSyscalls(unit)].sort().join('\n') + '\n')
    registry = await startDockerRegistry(join(work, 'registry'))
    layout = (await generateImages(join(work, 'images'), { baseBytes: 4 * 1024 * 1024, seed: 71 })).layouts.app1 ?? ''
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:1.0`, `docker://${registry.host}/shoal/app1:1.0`], { timeout: 60_000 })
  }, 120_000)

  afterAll(async () => {
    await Promise.all(daemons.map(async d => { await d.kill() }))
    await registry?.stop()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  function sandbox (): string[] {
    const errno = /^SystemCallErrorNumber=(\w+)$/m.exec(unit)?.[1]
    const action = errno === undefined ? 'kill' : String((constants.errno as Record<string, number>)[errno] ?? errno)
    const umask = /^UMask=(\d+)$/m.exec(unit)?.[1] ?? '0022'
    expect(unit).toMatch(/^DynamicUser=yes$/m)
    expect(unit).toMatch(/^CapabilityBoundingSet=$/m)
    expect(unit).toMatch(/^NoNewPrivileges=yes$/m)
    return [
      'setpriv', `--reuid=${SERVICE_ID}`, `--regid=${SERVICE_ID}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs',
      'sh', '-c', `umask ${umask} && exec "$@"`, 'sh',
      launcher, join(work, 'allowed'), action,
    ]
  }

  it('starts with the unit\'s flags, pulls through, takes a push, verifies, collects and stops cleanly', async () => {
    // The unit's ExecStart, its paths moved under the test's directory and its ports to free ones.
    const execStart = /^ExecStart=\/usr\/bin\/shoal (.*)$/m.exec(unit)?.[1]?.split(/\s+/) ?? []
    expect(execStart.slice(0, 5)).toEqual(['--data', '/var/lib/shoal', '--api', '/run/shoal/api.sock', 'daemon'])
    const flags = execStart.slice(5).filter((flag, i, all) => !['--registry', '--listen'].includes(flag) && !['--registry', '--listen'].includes(all[i - 1] ?? ''))
    const state = join(work, 'state')
    const runtime = join(work, 'run')
    for (const dir of [state, runtime]) {
      await mkdir(dir, { mode: 0o750 })
      await chown(dir, SERVICE_ID, SERVICE_ID)
    }
    await writeFile(join(work, 'tree.bin'), Buffer.alloc(3 * 1024 * 1024, 7))
    await mkdir(join(work, 'tree'))
    await execFileAsync('mv', [join(work, 'tree.bin'), join(work, 'tree')])

    // Before: Node 20's V8 calls pkey_alloc as it starts, which @system-service does not allow
    // (systemd 252): the daemon was killed by SIGSYS before its first line, every restart.
    const daemon = await startDaemonProcess(state, ['--api', join(runtime, 'api.sock'), ...flags, '--no-mdns', '--gateway', '--upstream', registry.url, '--allow-push'], {}, { wrap: sandbox() })
    daemons.push(daemon)
    const pulled = join(work, 'pulled')
    await execFileAsync('skopeo', ['copy', '--src-tls-verify=false', `docker://${daemon.registry}/shoal/app1:1.0`, `oci:${pulled}:1.0`], { timeout: 60_000 })
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:1.0`, `docker://${daemon.registry}/shoal/pushed:1.0`], { timeout: 60_000 })
    // The CLI as root or as the service's group reaches the socket.
    const id = await shoalOk(undefined, ['--api', daemon.api, 'push', join(work, 'tree')])
    expect(id).toMatch(/\S/)
    expect(await shoalOk(undefined, ['--api', daemon.api, 'verify'])).toMatch(/^ok: /)
    await shoalOk(undefined, ['--api', daemon.api, 'gc'])
    expect((await fetch(`http://${daemon.registry}/metrics`)).status).toBe(200)
    expect(await daemon.stop()).toBe(0)
    expect(daemon.child.signalCode).toBe(null)
  })
})
