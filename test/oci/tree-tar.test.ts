import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import tar from 'tar-stream'
import { describe, expect, it } from 'vitest'
import { extractTree } from '../../src/oci/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

type Entry = { name: string, type?: 'file' | 'directory' | 'symlink' | 'link', body?: string, linkname?: string, mode?: number }

/** A tar as a hostile client could write it: any names, any order, any types. */
async function tarOf (entries: Entry[]): Promise<Readable> {
  const pack = tar.pack()
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      pack.entry({ name: e.name, type: e.type ?? 'file', mode: e.mode ?? 0o644, linkname: e.linkname, size: e.body === undefined ? 0 : Buffer.byteLength(e.body) }, e.body ?? '', err => { if (err) reject(err); else resolve() })
    })
  }
  pack.finalize()
  return Readable.from(pack)
}

describe('extractTree refuses what would leave the tree, and leaves nothing behind', () => {
  const tempDir = useTempDirs()

  it.each<[string, Entry[], string]>([
    ['a .. segment', [{ name: './', type: 'directory' }, { name: '../escaped', body: 'x' }], 'ARCHIVE_UNSAFE_PATH'],
    ['an absolute path', [{ name: '/etc/escaped', body: 'x' }], 'ARCHIVE_UNSAFE_PATH'],
    ['a link that climbs out', [{ name: 'out', type: 'symlink', linkname: '../../etc' }], 'ARCHIVE_UNSAFE_PATH'],
    ['an absolute link', [{ name: 'out', type: 'symlink', linkname: '/etc' }], 'ARCHIVE_UNSAFE_PATH'],
    ['a file written through a link', [{ name: 'd', type: 'directory' }, { name: 'l', type: 'symlink', linkname: 'd' }, { name: 'l/x', body: 'x' }], 'ARCHIVE_UNSAFE_PATH'],
    ['a file before its directory', [{ name: 'a/b', body: 'x' }], 'ARCHIVE_UNSAFE_PATH'],
    ['a path twice', [{ name: 'f', body: 'x' }, { name: './f', body: 'y' }], 'ARCHIVE_DUPLICATE_ENTRY'],
    ['a hardlink', [{ name: 'f', body: 'x' }, { name: 'g', type: 'link', linkname: 'f' }], 'ARCHIVE_UNSUPPORTED'],
  ])('refuses %s', async (_what, entries, code) => {
    const root = await tempDir()
    const dest = join(root, 'dest')
    await expect(extractTree(await tarOf(entries), dest, { symlinks: true })).rejects.toMatchObject({ code })
    await expect(stat(dest)).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await readdir(root)).toEqual([])
  })

  it('refuses symlinks where none are expected (an export), and a tree over its byte limit', async () => {
    const root = await tempDir()
    await expect(extractTree(await tarOf([{ name: 'l', type: 'symlink', linkname: 'x' }]), join(root, 'a'))).rejects.toMatchObject({ code: 'ARCHIVE_UNSUPPORTED' })
    await expect(extractTree(await tarOf([{ name: 'big', body: 'x'.repeat(100) }]), join(root, 'b'), { maxBytes: 99 })).rejects.toMatchObject({ code: 'ARCHIVE_TOO_LARGE' })
    expect(await readdir(root)).toEqual([])
  })

  it('keeps modes (masked as asked, reporting what the mask kept off), directories last so a read-only one still gets its files', async () => {
    const root = await tempDir()
    const dest = join(root, 'dest')
    const entries: Entry[] = [
      { name: './', type: 'directory', mode: 0o750 },
      { name: 'ro', type: 'directory', mode: 0o555 },
      { name: 'ro/f', body: 'inside', mode: 0o4755 },
      { name: 'l', type: 'symlink', linkname: 'ro/f' },
    ]
    expect(await extractTree(await tarOf(entries), dest, { symlinks: true, modeMask: 0o1777 })).toEqual({ files: 1, bytes: 6, maskedModes: new Map([['ro/f', 0o4755]]) })
    expect((await stat(dest)).mode & 0o7777).toBe(0o750)
    expect((await stat(join(dest, 'ro'))).mode & 0o7777).toBe(0o555)
    expect((await stat(join(dest, 'ro', 'f'))).mode & 0o7777).toBe(0o755)
  })
})
