import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { COMMAND_SPECS, daemonSpec } from '../../src/cli/commands.js'
import { main } from '../../src/cli/index.js'
import { DAEMON_OPTIONS, settingsTable } from '../../src/daemon/index.js'
import { shoal } from '../helpers/shoal-cli.js'

/** Runs the CLI in this process with real streams, for the many help pages. */
async function run (argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
  stderr.setEncoding('utf8').on('data', (s: string) => { err += s })
  const code = await main(argv, { stdout, stderr })
  return { code, stdout: out, stderr: err }
}

describe('the CLI as a new user tries it', () => {
  it('gives every command its own --help, listing its own options and examples', async () => {
    const global = (await run(['--help'])).stdout
    for (const [name, spec] of [...Object.entries(COMMAND_SPECS), ['daemon', daemonSpec(DAEMON_OPTIONS)] as const]) {
      const help = await run([name, '--help'])
      expect(help.code, name).toBe(0)
      expect(help.stdout, name).not.toBe(global)
      expect(help.stdout, name).toContain(`Usage: shoal [global options] ${name}`)
      for (const [long, option] of Object.entries(spec.options)) expect(help.stdout, `${name} --${long}`).toContain(`--${long}${option.type === 'string' ? ` <${option.value}>` : ''}`)
      for (const example of spec.examples) expect(help.stdout, name).toContain(example)
      expect((await run(['help', name])).stdout, name).toBe(help.stdout)
    }
  })

  it('shows the settings table in `shoal daemon --help`, with --trust and --log-level', async () => {
    const help = (await run(['daemon', '--help'])).stdout
    expect(help).toContain(settingsTable('text'))
    for (const flag of ['--trust', '--log-level', '--swarm-key', '--no-mdns']) expect(help).toContain(flag)
    // The store is a directory (the table said `--data FILE`).
    expect(help).toMatch(/^ {2}--data DIR +SHOAL_DATA/m)
  })

  it('prints the package version with --version, from the built CLI', async () => {
    const { version } = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }
    const result = await shoal(undefined, ['--version'])
    expect(result).toMatchObject({ code: 0, stdout: `${version}\n` })
    expect((await run(['-V'])).stdout).toBe(`${version}\n`)
  })

  it('suggests the nearest command or option for a typo, and exits 2', async () => {
    const command = await run(['psuh', 'dir'])
    expect(command.code).toBe(2)
    expect(command.stderr).toContain('(Did you mean push?)')
    const option = await run(['push', '--rfe', 'x', 'dir'])
    expect(option.code).toBe(2)
    expect(option.stderr).toContain('(Did you mean --ref?)')
    const daemonOption = await run(['daemon', '--no-mnds'])
    expect(daemonOption.code).toBe(2)
    expect(daemonOption.stderr).toContain('(Did you mean --no-mdns?)')
    const json = await run(['--json', 'psuh'])
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'USAGE', message: expect.stringContaining('Did you mean push?') as unknown } })
  })

  it('refuses missing and extra arguments as usage errors', async () => {
    expect(await run(['export', 'only-one'])).toMatchObject({ code: 2, stderr: expect.stringContaining('missing required argument') as unknown })
    expect(await run(['ls', 'extra'])).toMatchObject({ code: 2, stderr: expect.stringContaining('too many arguments') as unknown })
  })

  it('keeps the README\'s settings table as the schema generates it', async () => {
    const readme = await readFile(join(import.meta.dirname, '../../README.md'), 'utf8')
    const start = readme.indexOf('<!-- settings-table:start -->\n')
    const end = readme.indexOf('<!-- settings-table:end -->')
    expect(start).toBeGreaterThan(0)
    expect(readme.slice(start + '<!-- settings-table:start -->\n'.length, end)).toBe(settingsTable('markdown'))
  })
})
