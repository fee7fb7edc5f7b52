import { access, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { b3sumManifest, b3sumOfBytes } from '../helpers/independent-hashes.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

describe('commands that read a store', () => {
  const tempDir = useTempDirs()

  it('report a missing store (exit 3) and do not create one', async () => {
    const missing = join(await tempDir(), 'typo')
    for (const args of [['ls'], ['verify'], ['revisions'], ['gc'], ['rm', 'a'.repeat(64)], ['export', 'a'.repeat(64), join(await tempDir(), 'out')]]) {
      const result = await shoal(missing, args)
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(3)
      expect(result.stderr).toContain('STORE_NOT_FOUND')
      expect(result.stderr).toContain(missing)
      await expect(access(missing)).rejects.toMatchObject({ code: 'ENOENT' })
    }
    // Under --json the error is a document on stdout, with the same exit code.
    const json = await shoal(missing, ['--json', 'ls'])
    expect(json.code).toBe(3)
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'STORE_NOT_FOUND', message: expect.stringContaining(missing) as unknown } })
  })

  it('name each bundle by its bundle ID and its snapdir ID in push and ls', async () => {
    const tree = await tempDir()
    await writeFile(join(tree, 'hello.txt'), 'hello\n')
    const data = await tempDir()
    const pushed = JSON.parse(await shoalOk(data, ['--json', 'push', tree])) as { id: string, snapdirId: string }
    const snapdirId = await b3sumOfBytes(await b3sumManifest(tree))
    expect(pushed.snapdirId).toBe(snapdirId)
    expect(JSON.parse(await shoalOk(data, ['--json', 'ls']))).toMatchObject([{ id: pushed.id, snapdirId }])
    const text = await shoalOk(data, ['ls'])
    expect(text.split('\n')[1]).toMatch(new RegExp(`^${pushed.id}  ${snapdirId}  `))
  })
})
