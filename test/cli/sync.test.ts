import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { listFiles } from '../helpers/store-snapshot.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { SNAPDIR_SYMLINK_GOLDEN, SNAPDIR_SYMLINK_GOLDEN_ID, symlinkTree } from '../helpers/symlink-tree.js'
import { useTempDirs } from '../helpers/temp-dir.js'

describe('shoal sync', () => {
  const tempDir = useTempDirs()

  it('round-trips a tree with internal symlinks through `sync --to file://` and back to the same IDs', async () => {
    const tree = await tempDir()
    await symlinkTree(tree)
    const data = await tempDir()
    const pushed = JSON.parse(await shoalOk(data, ['--json', 'push', tree])) as { id: string, snapdirId: string }
    expect(pushed.snapdirId).toBe(SNAPDIR_SYMLINK_GOLDEN_ID)
    const files = join(await tempDir(), 'store')
    const out = JSON.parse(await shoalOk(undefined, ['--json', 'sync', '--id', pushed.id, '--from', data, '--to', `file://${files}`])) as { id: string }
    expect(out.id).toBe(SNAPDIR_SYMLINK_GOLDEN_ID)
    expect(await readFile(join(files, '.manifests', out.id.slice(0, 3), out.id.slice(3, 6), out.id.slice(6, 9), out.id.slice(9)), 'utf8')).toBe(SNAPDIR_SYMLINK_GOLDEN)

    const other = await tempDir()
    const back = JSON.parse(await shoalOk(undefined, ['--json', 'sync', '--id', out.id, '--from', `file://${files}`, '--to', other])) as { id: string }
    expect(back.id).toBe(pushed.id)
    expect(await shoal(other, ['verify', pushed.id])).toMatchObject({ code: 0 })
    expect(await shoal(other, ['verify', SNAPDIR_SYMLINK_GOLDEN_ID])).toMatchObject({ code: 0 })
  })

  it('refuses an --id that is a path (exit 2) and creates nothing', async () => {
    const parent = await tempDir()
    for (const [from, to] of [[`file://${join(parent, 'files')}`, join(parent, 'data')], [join(parent, 'data'), `file://${join(parent, 'files')}`]] as const) {
      const result = await shoal(undefined, ['sync', '--id', '../../etc/passwd', '--from', from, '--to', to])
      expect(result.code).toBe(2)
      expect(result.stderr).toContain('../../etc/passwd')
    }
    expect(await listFiles(parent)).toEqual([])
  })

  it('answers manifest, id and id --bundle in JSON under --json', async () => {
    const tree = await tempDir()
    await symlinkTree(tree)
    expect(JSON.parse(await shoalOk(undefined, ['--json', 'id', tree]))).toEqual({ snapdirId: SNAPDIR_SYMLINK_GOLDEN_ID })
    const manifest = JSON.parse(await shoalOk(undefined, ['--json', 'manifest', tree])) as { snapdirId: string, entries: Array<{ path: string, perms: string, size: number }> }
    expect(manifest.snapdirId).toBe(SNAPDIR_SYMLINK_GOLDEN_ID)
    expect(manifest.entries.find(e => e.path === './link-a')).toMatchObject({ perms: '777', size: 5 })
    const bundle = JSON.parse(await shoalOk(undefined, ['--json', 'id', '--bundle', tree])) as { bundleId: string, snapdirId: string }
    expect(bundle.snapdirId).toBe(SNAPDIR_SYMLINK_GOLDEN_ID)
    expect(bundle.bundleId).toBe(await shoalOk(undefined, ['id', '--bundle', tree]))
  })
})
