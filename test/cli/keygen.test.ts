import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { shoal } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

describe('shoal keygen swarm FILE', () => {
  const tempDir = useTempDirs()

  it('writes a key only the owner reads, and never over an existing file: it says why and what to do', async () => {
    const dir = await tempDir()
    const key = join(dir, 'swarm.key')
    const made = await shoal(undefined, ['keygen', 'swarm', key])
    expect(made.code, made.stderr).toBe(0)
    expect((await stat(key)).mode & 0o777).toBe(0o600)
    const first = await readFile(key, 'utf8')
    expect(first).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n?$/)
    // Before: `EEXIST: file already exists, open '…' [EEXIST]`, exit 1, nothing said of the fleet.
    const again = await shoal(undefined, ['keygen', 'swarm', key])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain(`${key} already exists and is left as it is`)
    expect(again.stderr).toContain('give another FILE')
    expect(await readFile(key, 'utf8')).toBe(first)
    // Before: `ENOENT: no such file or directory, open '…' [ENOENT]`, exit 3.
    const nowhere = await shoal(undefined, ['keygen', 'swarm', join(dir, 'etc', 'shoal', 'swarm.key')])
    expect(nowhere.code).toBe(2)
    expect(nowhere.stderr).toContain(`mkdir -p ${join(dir, 'etc', 'shoal')}`)
  })
})
