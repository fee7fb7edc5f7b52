import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const DEMO = join(import.meta.dirname, '..', '..', 'scripts', 'demo.ts')
const DEMO_TIMEOUT_MS = 240_000

/**
 * The README's first command (`npm ci && npm run demo`) is what a new user runs first. `npm run
 * demo` also rebuilds dist/, which the global setup has just done and which other test files'
 * daemons are running from, so the script itself runs here.
 */
describe('npm run demo', () => {
  it('pulls through peers, verifies on every edge and answers containerd\'s first request, with nothing to warn about', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', DEMO], { stdio: ['ignore', 'pipe', 'pipe'], signal: AbortSignal.timeout(DEMO_TIMEOUT_MS) })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    const [code] = await once(child, 'exit') as [number | null]
    expect(code, `${stdout}\n${stderr}`).toBe(0)
    // The daemons log at warn and above to this stderr: a shipped default that warns (no swarm
    // key, say) would greet every new user.
    expect(stderr).toBe('')
    expect(stdout.match(/^edge[123]: ok: 1 bundle\(s\), 6 object\(s\), \d+ bytes checked, 0 bad, 0 missing$/gm)).toHaveLength(3)
    const copies = Number(/the gateway sent ([\d.]+) copies/.exec(stdout)?.[1])
    // The same bound as the CI fleet test: about one copy leaves the gateway, the rest moves between edges.
    expect(copies).toBeGreaterThan(0.99)
    expect(copies).toBeLessThanOrEqual(1.5)
    // containerd's form (repository, then ?ns=registry): the demo showed one containerd never sends.
    expect(stdout).toMatch(/asks http:\/\/127\.0\.0\.1:\d+\/v2\/shoal\/app1\/manifests\/1\.0\?ns=registry\.example\.com: 200 application\/vnd\.oci\.image\.manifest\.v1\+json sha256:[0-9a-f]{64}$/m)
  }, DEMO_TIMEOUT_MS + 10_000)
})
