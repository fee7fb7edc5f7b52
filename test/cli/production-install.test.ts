import { execFile } from 'node:child_process'
import { cp, mkdir, readdir, readFile, rm, stat, utimes } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.js'
import { b3sumOfFile } from '../helpers/independent-hashes.js'
import { shoal } from '../helpers/shoal-cli.js'
import { useWorkDir } from '../helpers/work-dir.js'

const run = promisify(execFile)
const REPO = fileURLToPath(new URL('../..', import.meta.url))
const INSTALL_TIMEOUT_MS = 240_000

/** The files a clean clone of the working tree has: tracked, plus new files git does not ignore. */
async function cloneFiles (): Promise<string[]> {
  const { stdout } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: REPO, maxBuffer: 16 * 1024 * 1024 })
  return stdout.split('\0').filter(name => name !== '')
}

async function exists (path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}

/**
 * What ships: a copy of the clone installed with `npm ci --omit=dev` (its `prepare` step
 * type-checks and bundles src/ into dist/), with none of the dev tools (no tsx, no vitest), runs the CLI and two daemons that move a
 * bundle between them.
 */
describe('a production install (npm ci --omit=dev in a clean clone)', () => {
  const work = useWorkDir('shoal-prod-install-')
  let clone: string
  let bin: string
  const daemons: DaemonProcess[] = []

  beforeAll(async () => {
    clone = join(work(), 'clone')
    for (const name of await cloneFiles()) {
      // Files deleted in the working tree but still tracked are not in a clone of it.
      if (!await exists(join(REPO, name))) continue
      await mkdir(dirname(join(clone, name)), { recursive: true })
      await cp(join(REPO, name), join(clone, name), { preserveTimestamps: true })
    }
    await run('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: clone, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 })
    bin = join(clone, 'bin', 'shoal.js')
  }, INSTALL_TIMEOUT_MS + 10_000)

  afterAll(async () => {
    await Promise.all(daemons.map(async d => await d.kill()))
  })

  it('builds dist/ during the install and leaves the dev tools out', async () => {
    expect(await exists(join(clone, 'dist', 'index.js'))).toBe(true)
    // The push's hashing thread is plain JavaScript loaded by path: it must be in the build too.
    expect(await exists(join(clone, 'dist', 'hash-thread.js'))).toBe(true)
    // Bundled: every file sits directly in dist/, one level under the package root as src/*.ts
    // modules are, which `../package.json` and `./hash-thread.js` (resolved from import.meta.url) rely on.
    expect((await readdir(join(clone, 'dist'), { withFileTypes: true })).filter(entry => entry.isDirectory())).toEqual([])
    expect(await exists(join(clone, 'node_modules', 'tsx'))).toBe(false)
    expect(await exists(join(clone, 'node_modules', 'vitest'))).toBe(false)
    // The version `shoal --version` reports comes from package.json, also in the build.
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', "console.log((await import('./dist/version.js')).SHOAL_VERSION)"], { cwd: clone })
    const { version } = JSON.parse(await readFile(join(clone, 'package.json'), 'utf8')) as { version: string }
    expect(stdout.trim()).toBe(version)
  })

  it('pushes, verifies and moves an image between two daemons it runs', async () => {
    const images = await generateImages(join(work(), 'images'), { baseBytes: 3 * 1024 * 1024 + 17, seed: 5 })
    const gateway = await startDaemonProcess(join(work(), 'gateway'), ['--gateway', '--no-mdns'], {}, { bin })
    daemons.push(gateway)
    const pushed = await shoal(undefined, ['--api', gateway.api, 'push', images.layouts.app1 ?? ''], { bin })
    expect(pushed.code, pushed.stderr).toBe(0)
    const id = pushed.stdout.trim()
    const edge = await startDaemonProcess(join(work(), 'edge'), ['--no-mdns', '--bootstrap', gateway.address], {}, { bin })
    daemons.push(edge)
    const out = join(work(), 'pulled')
    const pulled = await shoal(undefined, ['--api', edge.api, 'pull', id, out], { bin, timeoutMs: 60_000 })
    expect(pulled.code, `${pulled.stderr}\nthe edge's log ends:\n${edge.logs().slice(-6000)}`).toBe(0)
    const layout = images.layouts.app1 ?? ''
    const index = 'index.json'
    expect(await readFile(join(out, index))).toEqual(await readFile(join(layout, index)))
    await edge.stop()
    const verified = await shoal(join(work(), 'edge'), ['verify', id], { bin })
    expect(verified.code, verified.stdout + verified.stderr).toBe(0)
    // Every blob the edge checked out hashes as the original does (b3sum, not shoal's hasher).
    const blobs = JSON.parse(await readFile(join(layout, index), 'utf8')) as { manifests: Array<{ digest: string }> }
    for (const { digest } of blobs.manifests) {
      const path = join('blobs', 'sha256', digest.slice('sha256:'.length))
      expect(await b3sumOfFile(join(out, path))).toBe(await b3sumOfFile(join(layout, path)))
    }
    // 5-10 s alone; two daemon starts, a push, a pull (up to 60 s) and a verify beside other files.
  }, 120_000)

  it('warns when a source is newer than the build, and refuses to run without a build', async () => {
    const source = join(clone, 'src', 'cli', 'index.ts')
    const later = new Date(Date.now() + 60_000)
    await utimes(source, later, later)
    const stale = await shoal(undefined, ['id', join(clone, 'src')], { bin })
    expect(stale.code).toBe(0)
    expect(stale.stderr).toContain('src/cli/index.ts changed after the last build')

    await rm(join(clone, 'dist', '.built'))
    const unbuilt = await shoal(undefined, ['id', join(clone, 'src')], { bin })
    expect(unbuilt.code).toBe(1)
    expect(unbuilt.stderr).toContain('npm run build')
    expect(unbuilt.stdout).toBe('')
  })
})
