import { execFileSync } from 'node:child_process'
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  formatManifest, parseManifest, snapdirId, walkTree, DuplicatePathError, UnsafePathError, SymlinkEscapeError, ManifestSyntaxError,
  checkDirectoryChecksums,
} from '../../src/manifest/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const tempDir = useTempDirs()
const EMPTY = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'

function b3sumManifest (dir: string): string {
  return execFileSync('bash', [join(import.meta.dirname, '../helpers/b3sum-manifest.sh'), dir]).toString()
}

async function richTree (): Promise<string> {
  const root = await tempDir()
  await mkdir(join(root, 'nested/deeper/deepest'), { recursive: true })
  await mkdir(join(root, 'empty dir'))
  await writeFile(join(root, 'a file with spaces.txt'), 'spaces\n')
  await writeFile(join(root, 'nested/one.bin'), Buffer.alloc(3 * 1024 * 1024 + 5, 9))
  await writeFile(join(root, 'nested/deeper/two.txt'), 'two\n')
  await writeFile(join(root, 'nested/deeper/deepest/same.txt'), 'two\n')
  await writeFile(join(root, 'script.sh'), '#!/bin/sh\n')
  await writeFile(join(root, 'secret'), 'secret\n')
  await symlink('nested/deeper/two.txt', join(root, 'link-to-two'))
  await symlink('nested/deeper', join(root, 'link-to-dir'))
  await chmod(join(root, 'script.sh'), 0o755)
  await chmod(join(root, 'secret'), 0o600)
  await chmod(join(root, 'a file with spaces.txt'), 0o644)
  await chmod(join(root, 'nested/deeper'), 0o700)
  await chmod(join(root, 'empty dir'), 0o755)
  await chmod(root, 0o755)
  return root
}

describe('snapdir manifest', () => {
  it('matches snapdir\'s golden values for two empty files in a 700 directory', async () => {
    const root = await tempDir()
    await writeFile(join(root, 'foo.txt'), '')
    await writeFile(join(root, 'bar.txt'), '')
    await chmod(join(root, 'foo.txt'), 0o600)
    await chmod(join(root, 'bar.txt'), 0o600)
    await chmod(root, 0o700)
    const text = formatManifest(await walkTree(root))
    expect(text).toBe(
      'D 700 dba5865c0d91b17958e4d2cac98c338f85cbbda07b71a020ab16c391b5e7af4b 0 ./\n' +
      `F 600 ${EMPTY} 0 ./bar.txt\n` +
      `F 600 ${EMPTY} 0 ./foo.txt\n`)
  })

  it('equals an independent computation with b3sum on a tree with nesting, spaces, modes and symlinks', async () => {
    const root = await richTree()
    const text = formatManifest(await walkTree(root))
    expect(text).toBe(b3sumManifest(root))
    expect(text).toContain('./link-to-dir/two.txt')
    expect(text).toMatch(/^D 755 [0-9a-f]{64} 0 \.\/empty dir\/$/m)
  })

  it('computes the snapdir ID as BLAKE3 of the text with one trailing newline', async () => {
    const root = await richTree()
    const text = formatManifest(await walkTree(root))
    const viaB3sum = execFileSync('b3sum', ['--no-names'], { input: text }).toString().trim()
    expect(snapdirId(text)).toBe(viaB3sum)
    expect(snapdirId(text + '\n\n')).toBe(viaB3sum)
  })

  it('round-trips through the parser and checks directory checksums', async () => {
    const root = await richTree()
    const entries = await walkTree(root)
    const parsed = parseManifest('# a comment\n\n' + formatManifest(entries))
    // The text carries everything but a link's object size, which only the walk knows.
    expect(parsed).toEqual(entries.map(({ objectSize: _, ...entry }) => entry))
    expect(() => { checkDirectoryChecksums(parsed) }).not.toThrow()
    const forged = parsed.map(e => e.path === './secret' ? { ...e, checksum: EMPTY } : e)
    expect(() => { checkDirectoryChecksums(forged) }).toThrow(ManifestSyntaxError)
  })

  it('refuses a symlink that leaves the tree', async () => {
    const root = await tempDir()
    const outside = await tempDir()
    await writeFile(join(outside, 'passwd'), 'x')
    await symlink(join(outside, 'passwd'), join(root, 'escape'))
    await expect(walkTree(root)).rejects.toThrow(SymlinkEscapeError)
  })

  it('refuses a symlink loop', async () => {
    const root = await tempDir()
    await mkdir(join(root, 'a'))
    await symlink('..', join(root, 'a', 'up'))
    await expect(walkTree(root)).rejects.toThrow(/links back/)
  })

  it.each([
    ['a path with ..', `D 755 ${EMPTY} 0 ./\nF 644 ${EMPTY} 0 ./../etc/passwd\n`, UnsafePathError],
    ['an absolute path', `D 755 ${EMPTY} 0 ./\nF 644 ${EMPTY} 0 /etc/passwd\n`, UnsafePathError],
    ['a duplicate path', `D 755 ${EMPTY} 0 ./\nF 644 ${EMPTY} 0 ./a\nF 644 ${EMPTY} 0 ./a\n`, DuplicatePathError],
    ['a bad checksum', `D 755 ${EMPTY} 0 ./\nF 644 xyz 0 ./a\n`, ManifestSyntaxError],
    ['a missing parent', `D 755 ${EMPTY} 0 ./\nF 644 ${EMPTY} 0 ./d/a\n`, ManifestSyntaxError],
    ['a file named like a directory', `D 755 ${EMPTY} 0 ./\nF 644 ${EMPTY} 0 ./a/\n`, ManifestSyntaxError],
    ['too few fields', `D 755 ${EMPTY} ./\n`, ManifestSyntaxError],
  ])('refuses %s', (_what, text, errorClass) => {
    expect(() => parseManifest(text)).toThrow(errorClass)
  })

  it('keeps a path with spaces whole', () => {
    const entries = parseManifest(`D 755 ${EMPTY} 0 ./\nF 644 ${EMPTY} 0 ./a b  c\n`)
    expect(entries[1]?.path).toBe('./a b  c')
  })
})
