import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { canMountOwnNamespace, ownMount, startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'

const MIB = 1024 * 1024

/** A plain tree with what a tar must carry faithfully: odd modes, an empty dir, a link inside. */
async function writePlainTree (dir: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true })
  await mkdir(join(dir, 'empty'))
  await mkdir(join(dir, 'secret'))
  await writeFile(join(dir, 'bin', 'tool'), '#!/bin/sh\necho hi\n')
  await chmod(join(dir, 'bin', 'tool'), 0o755)
  await writeFile(join(dir, 'secret', 'key'), 'k'.repeat(5000))
  await chmod(join(dir, 'secret', 'key'), 0o600)
  await chmod(join(dir, 'secret'), 0o750)
  await writeFile(join(dir, 'readme'), 'plain tree\n')
  await symlink('bin/tool', join(dir, 'tool-link'))
  // What the daemon keeps off its own files but the bundle must record: setuid, setgid, sticky.
  await writeFile(join(dir, 'bin', 'suid'), 'x')
  await chmod(join(dir, 'bin', 'suid'), 0o4755)
  await writeFile(join(dir, 'bin', 'sgid'), 'y')
  await chmod(join(dir, 'bin', 'sgid'), 0o2711)
  await mkdir(join(dir, 'shared'))
  await chmod(join(dir, 'shared'), 0o3777)
}

describe.skipIf(!canMountOwnNamespace())('push, pull and export stream through the control API', () => {
  let work: string
  let hidden: string
  let daemon: DaemonProcess
  let layout: string
  let plain: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-transfer-'))
    // What the CLI pushes lives here; the daemon gets an empty tmpfs over it in its own mount
    // namespace, as under the shipped unit's PrivateTmp or in a container.
    hidden = join(work, 'client-only')
    const images = await generateImages(join(hidden, 'images'), { baseBytes: 2 * MIB, seed: 31 })
    layout = images.layouts.app1 ?? ''
    plain = join(hidden, 'plain')
    await writePlainTree(plain)
    daemon = await startDaemonProcess(join(work, 'node'), ['--no-mdns'], {}, {
      wrap: ownMount(hidden, 'tmpfs'),
    })
  })

  afterAll(async () => {
    await daemon?.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('pushes a directory the daemon cannot see, to the same bundle ID as a push without a daemon', async () => {
    const viaDaemon = await shoalOk(undefined, ['--api', daemon.api, 'push', layout])
    const direct = await shoalOk(join(work, 'direct'), ['push', layout])
    expect(viaDaemon).toMatch(/^[0-9a-f]{64}$/)
    expect(viaDaemon).toBe(direct)
    const plainViaDaemon = await shoalOk(undefined, ['--api', daemon.api, 'push', plain])
    expect(plainViaDaemon).toBe(await shoalOk(join(work, 'direct'), ['push', plain]))
  })

  it('pushes an archive file the daemon cannot see, as it is', async () => {
    const archive = join(hidden, 'app1.tar')
    await shoalOk(join(work, 'direct'), ['export', await shoalOk(join(work, 'direct'), ['push', layout]), archive])
    const id = await shoalOk(undefined, ['--api', daemon.api, 'push', archive, '--ref', 'registry.example.com/shoal/app1:1.0'])
    expect(id).toBe(await shoalOk(join(work, 'direct'), ['push', layout]))
  })

  it('exports with the daemon running (found by --data): a directory and an archive, byte for byte what a store export writes', async () => {
    const id = await shoalOk(undefined, ['--api', daemon.api, 'push', plain])
    const out = join(work, 'exported-tree')
    // --data names the daemon's store: the CLI finds the daemon by its socket instead of failing on the lock.
    await shoalOk(join(work, 'node'), ['export', id, out])
    // A store export turns the link into a copy of its target (the manifest's rule); so must this one.
    const directOut = join(work, 'exported-direct')
    await shoalOk(join(work, 'direct'), ['export', await shoalOk(join(work, 'direct'), ['push', plain]), directOut])
    expect(await shoalOk(undefined, ['manifest', out])).toBe(await shoalOk(undefined, ['manifest', directOut]))
    expect(await readFile(join(out, 'tool-link'), 'utf8')).toBe('#!/bin/sh\necho hi\n')
    expect((await stat(join(out, 'secret'))).mode & 0o777).toBe(0o750)
    expect((await stat(join(out, 'secret', 'key'))).mode & 0o777).toBe(0o600)
    // setuid, setgid and sticky bits went through the daemon and came back.
    expect((await stat(join(out, 'bin', 'suid'))).mode & 0o7777).toBe(0o4755)
    expect((await stat(join(out, 'bin', 'sgid'))).mode & 0o7777).toBe(0o2711)
    expect((await stat(join(out, 'shared'))).mode & 0o7777).toBe(0o3777)

    const imageId = await shoalOk(undefined, ['--api', daemon.api, 'push', layout])
    const viaDaemon = join(work, 'via-daemon.tar')
    const direct = join(work, 'direct.tar')
    await shoalOk(join(work, 'node'), ['export', imageId, viaDaemon])
    await shoalOk(join(work, 'direct'), ['export', imageId, direct])
    expect((await readFile(viaDaemon)).equals(await readFile(direct))).toBe(true)
    expect((await readdir(work)).filter(name => name.includes('.partial-'))).toEqual([])
  })

  it('refuses to export into a directory that is not empty, writing nothing', async () => {
    const id = await shoalOk(undefined, ['--api', daemon.api, 'push', plain])
    const out = join(work, 'not-empty')
    await mkdir(out)
    await writeFile(join(out, 'mine'), 'keep')
    const result = await shoal(undefined, ['--api', daemon.api, 'export', id, out])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain('not empty')
    expect(await readdir(out)).toEqual(['mine'])
  })

  it('acts on no path named in a request: a push or pull naming one is refused and nothing is read or written', async () => {
    const before = (await daemon.status()).bundles.length
    const push = await daemon.controlText('POST', '/api/v1/push', { path: layout })
    expect(push.status).toBe(400)
    expect(push.text).toContain('PATH_NOT_ACCEPTED')
    expect((await daemon.status()).bundles.length).toBe(before)
    const id = await shoalOk(undefined, ['--api', daemon.api, 'push', plain])
    const dest = join(work, 'pull-dest')
    const pull = await daemon.controlText('POST', '/api/v1/pull', { ref: id, dest })
    expect(pull.status).toBe(400)
    expect(pull.text).toContain('PATH_NOT_ACCEPTED')
    await expect(stat(dest)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
