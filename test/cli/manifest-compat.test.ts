import { chmod, mkdir, symlink, writeFile, lstat, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { b3sumManifest, b3sumOfBytes } from '../helpers/independent-hashes.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const EMPTY_FILE_BLAKE3 = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
// DESIGN.md golden value: a 700 directory holding two empty 600 files foo.txt, bar.txt.
const GOLDEN_ROOT_CHECKSUM = 'dba5865c0d91b17958e4d2cac98c338f85cbbda07b71a020ab16c391b5e7af4b'

/** Files (with modes), nested and empty directories, spaces, duplicate contents and symlinks that stay inside. */
async function makeAwkwardTree (root: string, options: { links?: boolean } = {}): Promise<void> {
  const file = async (rel: string, content: string | Buffer, mode: number): Promise<void> => {
    await writeFile(join(root, rel), content)
    await chmod(join(root, rel), mode)
  }
  const dir = async (rel: string, mode: number): Promise<void> => {
    await mkdir(join(root, rel), { recursive: true })
    await chmod(join(root, rel), mode)
  }
  await dir('a dir', 0o755)
  await file('a dir/file one.txt', 'hello, world\n', 0o644)
  await file('a dir/secret key', 'do not share\n', 0o600)
  await file('a dir/run me.sh', '#!/bin/sh\necho hi\n', 0o755)
  await file('a dir/private tool', Buffer.alloc(70_000, 7), 0o700)
  await dir('nested/deep/deeper', 0o755)
  await chmod(join(root, 'nested'), 0o700)
  await file('nested/deep/deeper/leaf', 'leaf\n', 0o644)
  // Same bytes twice: one object, and a directory checksum de-duplicates child checksums.
  await file('nested/deep/copy of leaf', 'leaf\n', 0o644)
  await dir('nested/empty too', 0o700)
  await dir('empty', 0o755)
  await file('zero', '', 0o644)
  // 1.5 MiB: more than one chunk, so a chunk table is part of the bundle.
  await file('big.bin', Buffer.alloc(1536 * 1024 + 3, 'x'), 0o644)
  if (options.links !== false) {
    await symlink('a dir/run me.sh', join(root, 'link to script'))
    await symlink('nested/deep', join(root, 'link to dir'))
  }
  await chmod(root, 0o755)
}

describe('shoal manifest and shoal id (snapdir-compatible)', () => {
  const tempDir = useTempDirs()

  it('prints the same manifest as coreutils+b3sum, and an ID that is b3sum of that text', async () => {
    const tree = await tempDir()
    await makeAwkwardTree(tree)
    const expected = await b3sumManifest(tree)
    const manifest = await shoal(undefined, ['manifest', tree])
    expect(manifest.code).toBe(0)
    expect(manifest.stdout).toBe(expected)
    // Every awkward case is really in it.
    for (const fragment of [' ./a dir/secret key', 'F 600 ', 'F 700 ', 'F 755 ', 'D 700 ', ' ./empty/', ' ./nested/empty too/', ' ./link to script', ' ./link to dir/deeper/leaf', `F 644 ${EMPTY_FILE_BLAKE3} 0 ./zero`]) {
      expect(expected).toContain(fragment)
    }
    expect(await shoalOk(undefined, ['id', tree])).toBe(await b3sumOfBytes(expected))
  })

  it('matches DESIGN.md\'s golden root checksum for a 700 directory of two empty 600 files', async () => {
    const tree = await tempDir()
    for (const name of ['foo.txt', 'bar.txt']) {
      await writeFile(join(tree, name), '')
      await chmod(join(tree, name), 0o600)
    }
    await chmod(tree, 0o700)
    const text = await shoalOk(undefined, ['manifest', tree])
    expect(text.split('\n')[0]).toBe(`D 700 ${GOLDEN_ROOT_CHECKSUM} 0 ./`)
    expect(text + '\n').toBe(await b3sumManifest(tree))
  })

  it('pushes a plain tree and exports it back exactly: same manifest, modes and content; symlinks become copies of their targets', async () => {
    const tree = await tempDir()
    const data = await tempDir()
    const out = join(await tempDir(), 'checkout')
    await makeAwkwardTree(tree)
    const pushed = JSON.parse(await shoalOk(data, ['--json', 'push', tree])) as { id: string, refs: unknown[] }
    expect(pushed.refs).toEqual([])
    expect(await shoalOk(undefined, ['id', '--bundle', tree])).toBe(pushed.id)
    await shoalOk(data, ['export', pushed.id, out])
    // snapdir follows symlinks: the checkout holds a copy, not a link, with the link's mode
    // (777) and the target's bytes. The manifest has no link targets, so a link cannot come
    // back; only the link's own entry (its size, the link text's length) differs.
    expect((await lstat(join(out, 'link to script'))).isFile()).toBe(true)
    expect(await readlink(join(tree, 'link to script'))).toBe('a dir/run me.sh')
    const withoutLinks = (text: string): string => text.split('\n').filter(line => !line.endsWith(' ./link to script') && !/ \.\/(link to dir\/)?$/.test(line) && line !== '').join('\n')
    const exported = await b3sumManifest(out)
    const original = await b3sumManifest(tree)
    expect(withoutLinks(exported)).toBe(withoutLinks(original))
    expect(exported).toMatch(/^F 777 [0-9a-f]{64} 18 \.\/link to script$/m)
    expect(original).toMatch(/^F 777 [0-9a-f]{64} 15 \.\/link to script$/m)
    // The tree's snapdir ID names the pushed bundle.
    expect(await shoal(data, ['verify', await shoalOk(undefined, ['id', tree])])).toMatchObject({ code: 0 })
  })

  it('pushes a plain tree without symlinks and exports it back to the same snapdir ID', async () => {
    const tree = await tempDir()
    const data = await tempDir()
    const out = join(await tempDir(), 'checkout')
    await makeAwkwardTree(tree, { links: false })
    const id = await shoalOk(data, ['push', tree])
    await shoalOk(data, ['export', id, out])
    expect(await b3sumManifest(out)).toBe(await b3sumManifest(tree))
    expect(await shoalOk(undefined, ['id', out])).toBe(await shoalOk(undefined, ['id', tree]))
  })

  it('refuses to export into a directory that is not empty, and names it', async () => {
    const tree = await tempDir()
    const data = await tempDir()
    const out = await tempDir()
    await writeFile(join(tree, 'f'), 'f')
    await writeFile(join(out, 'already here'), 'x')
    const id = await shoalOk(data, ['push', tree])
    const result = await shoal(data, ['export', id, out])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('DESTINATION_EXISTS')
    expect(result.stderr).toContain(out)
  })
})
