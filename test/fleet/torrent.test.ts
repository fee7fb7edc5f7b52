import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seedCount } from '../../scripts/fleet/bittorrent-mode.js'
import { parseFleetArgs, UsageError } from '../../scripts/fleet/options.js'
import { bencode, infoHashQuery, makeTorrent } from '../../scripts/fleet/torrent.js'

const run = promisify(execFile)

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'fleet-torrent-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

async function hasAria2c (): Promise<boolean> {
  return await run('aria2c', ['--version']).then(() => true, () => false)
}

describe('bencoding', () => {
  it('encodes BEP 3\'s examples byte for byte', () => {
    expect(bencode('spam').toString()).toBe('4:spam')
    expect(bencode(3).toString()).toBe('i3e')
    expect(bencode(-3).toString()).toBe('i-3e')
    expect(bencode(['spam', 'eggs']).toString()).toBe('l4:spam4:eggse')
    expect(bencode({ spam: 'eggs', cow: 'moo' }).toString()).toBe('d3:cow3:moo4:spam4:eggse')
    expect(bencode({ spam: ['a', 'b'] }).toString()).toBe('d4:spaml1:a1:bee')
  })

  it('counts string lengths in bytes and sorts keys by raw bytes, not UTF-16 units', () => {
    expect(bencode('é').toString('latin1')).toBe('2:\u00c3\u00a9')
    expect(bencode(Buffer.from([0, 255])).equals(Buffer.from([0x32, 0x3a, 0, 255]))).toBe(true)
    // 'Z' (0x5a) before 'a' (0x61) before 'é' (0xc3 0xa9).
    expect(bencode({ é: 1, a: 2, Z: 3 }).toString('latin1')).toBe('d1:Zi3e1:ai2e2:\u00c3\u00a9i1ee')
  })

  it('refuses numbers bencoding cannot hold', () => {
    expect(() => bencode(1.5)).toThrow(RangeError)
    expect(() => bencode(Number.NaN)).toThrow(RangeError)
  })
})

describe('the bed\'s torrent', () => {
  it('hashes pieces across file boundaries in sorted path order', async () => {
    const layout = join(dir, 'layout')
    await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true })
    const big = randomBytes(40_000)
    const small = Buffer.from('{"schemaVersion":2}')
    await writeFile(join(layout, 'blobs', 'sha256', 'ab'), big)
    await writeFile(join(layout, 'index.json'), small)
    const torrent = await makeTorrent(layout, { announce: 'http://10.0.0.1:6969/announce', pieceBytes: 16 * 1024 })
    const all = Buffer.concat([big, small])
    expect(torrent.totalBytes).toBe(all.length)
    expect(torrent.pieceCount).toBe(3)
    const pieces = Buffer.concat([0, 1, 2].map(i => createHash('sha1').update(all.subarray(i * 16384, (i + 1) * 16384)).digest()))
    const info = { name: 'layout', 'piece length': 16384, pieces, files: [{ length: big.length, path: ['blobs', 'sha256', 'ab'] }, { length: small.length, path: ['index.json'] }] }
    expect(torrent.metainfo.equals(bencode({ announce: 'http://10.0.0.1:6969/announce', info }))).toBe(true)
    expect(torrent.infoHash.equals(createHash('sha1').update(bencode(info)).digest())).toBe(true)
    expect(infoHashQuery(torrent.infoHash)).toBe([...torrent.infoHash].map(b => '%' + b.toString(16).padStart(2, '0')).join(''))
  })

  it('is read by aria2c as the same torrent (info hash, pieces, files)', async ({ skip }) => {
    if (!await hasAria2c()) skip('aria2c is not installed (apt-get install aria2)')
    const layout = join(dir, 'aria')
    await mkdir(layout, { recursive: true })
    await writeFile(join(layout, 'one'), randomBytes(70_000))
    await writeFile(join(layout, 'two'), randomBytes(10))
    const torrent = await makeTorrent(layout, { announce: 'http://10.0.0.1:6969/announce', pieceBytes: 32 * 1024 })
    const path = join(dir, 'aria.torrent')
    await writeFile(path, torrent.metainfo)
    const { stdout } = await run('aria2c', ['-S', path])
    expect(stdout).toContain(`Info Hash: ${torrent.infoHash.toString('hex')}`)
    expect(stdout).toMatch(/The Number of Pieces: 3\b/)
    expect(stdout).toContain('Total Length: 68KiB (70,010)')
    expect(stdout).toContain('./aria/one')
  })

  it('refuses a piece size that is not a power of two, and an empty directory', async () => {
    await mkdir(join(dir, 'empty'), { recursive: true })
    await expect(makeTorrent(join(dir, 'empty'), { announce: 'http://x/announce', pieceBytes: 1 << 20 })).rejects.toThrow(/no bytes/)
    await expect(makeTorrent(join(dir, 'empty'), { announce: 'http://x/announce', pieceBytes: 100_000 })).rejects.toThrow(RangeError)
  })
})

describe('bittorrent mode options', () => {
  it('takes --mode bittorrent and refuses what only measures shoal daemons or faults', () => {
    const parsed = parseFleetArgs(['--mode', 'bittorrent', '--nodes', '8'])
    expect(parsed.kind === 'run' && parsed.options.mode).toBe('bittorrent')
    expect(() => parseFleetArgs(['--mode', 'bittorrent', '--cpu-prof', '/tmp/x'])).toThrow(UsageError)
    expect(() => parseFleetArgs(['--mode', 'bittorrent', '--faults', 'kill'])).toThrow(/without faults/)
    expect(() => parseFleetArgs(['--mode', 'torrent'])).toThrow(/shoal, registry or bittorrent/)
  })

  it('reads the seed count from a tracker\'s scrape answer', () => {
    const answer = Buffer.concat([Buffer.from('d5:filesd20:'), Buffer.alloc(20, 7), Buffer.from('d8:completei2e10:downloadedi1e10:incompletei5eeee')]).toString('latin1')
    expect(seedCount(answer)).toBe(2)
    expect(seedCount('d5:filesdee')).toBe(0)
  })
})
