import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DEPLOY } from '../deploy/deploy-files.js'
import { shoal } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

/** The control socket the shipped unit gives the daemon (its ExecStart's global --api). */
async function unitApiSocket (): Promise<string> {
  const unit = await readFile(join(DEPLOY, 'shoal.service'), 'utf8')
  const execStart = /^ExecStart=\/usr\/bin\/shoal (.*)$/m.exec(unit)?.[1]?.split(/\s+/) ?? []
  const api = execStart[execStart.indexOf('--api') + 1]
  expect(api, 'the unit names its control socket with --api').toMatch(/^\//)
  return api ?? ''
}

describe('a command that finds no daemon where it looks', () => {
  const tempDir = useTempDirs()

  // An operator who installed the unit and typed `shoal ls` as root: the CLI looked in
  // ~/.local/share/shoal, found neither a store nor a daemon, and said to check --data or
  // "push something there first". Before: nothing sent them to the unit's socket.
  it('names --api and the systemd unit\'s control socket, for commands on the store and for those that need the daemon', async () => {
    const socket = await unitApiSocket()
    const home = await tempDir()
    const env = { HOME: home, SHOAL_DATA: '', SHOAL_API: '', XDG_DATA_HOME: '' }
    for (const args of [['ls'], ['verify'], ['gc'], ['status'], ['peers'], ['pull', 'registry.example.com/team/app:1.0']]) {
      const result = await shoal(undefined, args, { env })
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).not.toBe(0)
      expect(result.stderr, args.join(' ')).toContain(join(home, '.local', 'share', 'shoal'))
      expect(result.stderr, args.join(' ')).toContain(`shoal --api ${socket}`)
    }
  })
})
