import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { SHOAL_BIN, shebangEnv, shebangNodeFlags } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

/**
 * systemd's /usr/bin/shoal, the container's entry point and the Kubernetes pods all run
 * bin/shoal.js as an executable: its first line (`#!/usr/bin/env -S NAME=VALUE… node FLAGS`)
 * is what gives the daemon the RSS settings measured in docs/architecture.md ("RSS").
 */
describe('bin/shoal.js as an executable', () => {
  const tempDir = useTempDirs()

  it('runs the daemon with its first line\'s node flags and environment', async () => {
    expect(shebangNodeFlags()).toContain('--max-semi-space-size=1')
    expect(shebangNodeFlags()).toContain('--heap-growing-percent=100')
    expect(shebangEnv()).toEqual({ MALLOC_TRIM_THRESHOLD_: '33554432' })
    // Kernels before 5.1 read only the first 127 characters of a #! line and drop the rest.
    expect(readFileSync(SHOAL_BIN, 'utf8').split('\n', 1)[0]!.length).toBeLessThanOrEqual(127)
    const env: NodeJS.ProcessEnv = { ...process.env }
    for (const name of Object.keys(shebangEnv())) delete env[name]
    const child = spawn(SHOAL_BIN, ['--data', await tempDir(), '--json', 'daemon', '--registry', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns'], { stdio: ['ignore', 'pipe', 'pipe'], env })
    try {
      let stderr = ''
      child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
      const started = await new Promise<string>((resolve, reject) => {
        let stdout = ''
        const timer = setTimeout(() => { reject(new Error(`the daemon did not start within 30 s: ${stderr}`)) }, 30_000)
        child.stdout.setEncoding('utf8').on('data', (s: string) => {
          stdout += s
          if (!stdout.includes('\n')) return
          clearTimeout(timer)
          resolve(stdout.slice(0, stdout.indexOf('\n')))
        })
        child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the daemon exited with ${String(code)}: ${stderr}`)) })
      })
      expect(JSON.parse(started)).toHaveProperty('peerId')
      // `env` execs node, so the child's pid is the daemon's own process.
      const environ = (await readFile(`/proc/${child.pid}/environ`, 'utf8')).split('\0')
      for (const [name, value] of Object.entries(shebangEnv())) expect(environ).toContain(`${name}=${value}`)
      const argv = (await readFile(`/proc/${child.pid}/cmdline`, 'utf8')).split('\0')
      for (const flag of shebangNodeFlags()) expect(argv).toContain(flag)
    } finally {
      child.kill('SIGTERM')
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit')
    }
  })
})
