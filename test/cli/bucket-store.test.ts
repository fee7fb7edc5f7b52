import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { watch } from 'node:fs'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.js'
import { b3sumOfFile } from '../helpers/independent-hashes.js'
import { startS3Gate, startS3Server, type S3Gate, type S3Server } from '../helpers/s3-server.js'
import { shoal, spawnShoal } from '../helpers/shoal-cli.js'
import { listFiles } from '../helpers/store-snapshot.js'
import { useTempDirs } from '../helpers/temp-dir.js'
import { treeManifest } from '../helpers/tree-manifest.js'

const run = promisify(execFile)
const MIB = 1024 * 1024

/**
 * snapdir's own tool, when its repository is on this machine: SHOAL_SNAPDIR_DIR names a
 * directory holding `snapdir` and `snapdir-s3-store` (it cannot be installed from npm or
 * Debian, so CI has it not; the golden keys in test/store/bucket-sync.test.ts stand in there).
 */
const SNAPDIR_DIR = process.env.SHOAL_SNAPDIR_DIR

// Each test runs several CLI processes over a gigabyte-scale machine share: minutes, not the default 60 s, under load.
describe('shoal push/pull/sync/verify/revisions --store with s3:// and gs:// (s3rver, the AWS CLI)', { timeout: 240_000 }, () => {
  const tempDir = useTempDirs()
  let server: S3Server
  let serverDir: string
  const gates: S3Gate[] = []

  beforeAll(async () => {
    serverDir = await mkdtemp(join(tmpdir(), 'shoal-s3rver-'))
    server = await startS3Server(serverDir, ['images', 'images-eu'])
  })
  afterAll(async () => {
    await server.stop()
    await rm(serverDir, { recursive: true, force: true })
  })
  afterEach(async () => {
    for (const gate of gates.splice(0)) await gate.close()
  })

  async function env (endpoint = server.endpoint): Promise<Record<string, string>> {
    return { ...server.env, AWS_ENDPOINT_URL: endpoint, SNAPDIR_S3_STORE_ENDPOINT_URL: endpoint, SHOAL_GS_ENDPOINT_URL: endpoint, HOME: await tempDir(), XDG_STATE_HOME: await tempDir() }
  }

  async function ok (data: string | undefined, args: string[], environment: Record<string, string>): Promise<string> {
    const result = await shoal(data, args, { env: environment })
    if (result.code !== 0) throw new Error(`shoal ${args.join(' ')} exited ${String(result.code)}: ${result.stderr}`)
    return result.stdout.trim()
  }

  async function aws (args: string[], environment: Record<string, string>): Promise<string> {
    const { stdout } = await run('aws', ['--endpoint-url', server.endpoint, ...args], { env: { ...process.env, ...environment } })
    return stdout
  }

  async function tree (bigBytes = 9 * MIB): Promise<string> {
    const dir = await tempDir()
    // As mkdir makes it (mkdtemp gives 700): snapdir's pull creates the root with the umask's mode.
    await chmod(dir, 0o755)
    await mkdir(join(dir, 'layers', 'blobs'), { recursive: true })
    await writeFile(join(dir, 'layers', 'blobs', 'big'), randomBytes(bigBytes))
    await writeFile(join(dir, 'layers', 'index.json'), '{"schemaVersion":2}\n')
    await writeFile(join(dir, 'run.sh'), '#!/bin/sh\necho hi\n')
    await chmod(join(dir, 'run.sh'), 0o755)
    await writeFile(join(dir, 'empty'), '')
    return dir
  }

  it('push --store s3: the AWS CLI finds every object under its BLAKE3 and the manifest under the ID; pull --store gets the tree back', async () => {
    const e = await env()
    const dir = await tree()
    const id = await ok(undefined, ['push', '--store', 's3://images/cli/push', dir], e)
    expect(id).toBe(await ok(undefined, ['id', dir], e))

    // An independent client reads the bucket: each key names its bytes' b3sum.
    const copy = await tempDir()
    await aws(['s3', 'cp', '--recursive', '--only-show-errors', 's3://images/cli/push/', copy], e)
    const objects = await listFiles(join(copy, '.objects'))
    expect(objects).toHaveLength(4)
    for (const rel of objects) expect(await b3sumOfFile(join(copy, '.objects', rel))).toBe(rel.split('/').join(''))
    const manifests = await listFiles(join(copy, '.manifests'))
    expect(manifests.map(rel => rel.split('/').join(''))).toEqual([id])
    expect(await b3sumOfFile(join(copy, '.manifests', manifests[0]!))).toBe(id)

    if (SNAPDIR_DIR !== undefined) {
      const out = join(await tempDir(), 'out')
      await run(join(SNAPDIR_DIR, 'snapdir'), ['pull', '--store', 's3://images/cli/push', '--id', id, out], { env: { ...process.env, ...e, PATH: `${SNAPDIR_DIR}:${process.env.PATH ?? ''}` }, cwd: await tempDir() })
      expect(await treeManifest(out)).toBe(await treeManifest(dir))
    }

    const data = await tempDir()
    const out = join(await tempDir(), 'out')
    const bundleId = await ok(data, ['pull', '--store', 's3://images/cli/push', '--id', id, out], e)
    expect(bundleId).toMatch(/^[0-9a-f]{64}$/)
    expect(await treeManifest(out)).toBe(await treeManifest(dir))
    expect(await ok(data, ['verify'], e)).toMatch(/^ok: 1 bundle/)
  })

  it('a snapshot snapdir pushed (its own tool, or its exact aws commands) syncs to a data dir and to another bucket: verify clean, export identical', async () => {
    const e = await env()
    const dir = await tree()
    let id: string
    if (SNAPDIR_DIR !== undefined) {
      const { stdout } = await run(join(SNAPDIR_DIR, 'snapdir'), ['push', '--store', 's3://images/cli/snapdir', dir], { env: { ...process.env, ...e, PATH: `${SNAPDIR_DIR}:${process.env.PATH ?? ''}` }, cwd: await tempDir() })
      id = stdout.trim()
    } else {
      // What snapdir-s3-store's get-push-command runs, from a staging dir in its layout.
      const staging = await tempDir()
      id = (await ok(undefined, ['push', '--store', `file://${staging}`, dir], e))
      await aws(['s3', 'sync', '--only-show-errors', '--follow-symlinks', '--no-guess-mime-type', '--size-only', `${staging}/.objects/`, 's3://images/cli/snapdir/.objects/'], e)
      const manifest = join('.manifests', id.slice(0, 3), id.slice(3, 6), id.slice(6, 9), id.slice(9))
      await aws(['s3', 'cp', '--only-show-errors', '--follow-symlinks', '--no-guess-mime-type', join(staging, manifest), `s3://images/cli/snapdir/${manifest}`], e)
    }
    expect(id).toBe(await ok(undefined, ['id', dir], e))

    const data = await tempDir()
    await ok(data, ['sync', '--id', id, '--from', 's3://images/cli/snapdir', '--to', data], e)
    const out = join(await tempDir(), 'out')
    await ok(data, ['export', id, out], e)
    expect(await treeManifest(out)).toBe(await treeManifest(dir))
    expect(await ok(data, ['verify'], e)).toMatch(/^ok: 1 bundle/)

    expect(await ok(undefined, ['sync', '--id', id, '--from', 's3://images/cli/snapdir', '--to', 'gs://images-eu/cli/copy'], e)).toMatch(/copied 4 object/)
    expect(await ok(undefined, ['verify', '--store', 'gs://images-eu/cli/copy', '--id', id], e)).toMatch(/^ok: 1 snapshot\(s\), 4 object/)
    expect(await ok(undefined, ['revisions', '--store', 'gs://images-eu/cli/copy'], e)).toMatch(new RegExp(`^\\S+Z  ${id}$`))
  })

  it('verify --store names a damaged object and exits 1', async () => {
    const e = await env()
    const dir = await tree(100)
    const id = await ok(undefined, ['push', '--store', 's3://images/cli/damaged', dir], e)
    const small = (await readFile(join(dir, 'layers', 'index.json')))
    const hash = await b3sumOfFile(join(dir, 'layers', 'index.json'))
    const key = `cli/damaged/.objects/${hash.slice(0, 3)}/${hash.slice(3, 6)}/${hash.slice(6, 9)}/${hash.slice(9)}`
    const bad = join(await tempDir(), 'bad')
    await writeFile(bad, Buffer.from(small.toString().toUpperCase()))
    await aws(['s3', 'cp', '--only-show-errors', bad, `s3://images/${key}`], e)
    const result = await shoal(undefined, ['verify', '--store', 's3://images/cli/damaged'], { env: e })
    expect(result.code).toBe(1)
    expect(result.stdout).toContain(`BAD ${hash}: hashes to `)
    expect(result.stdout).toContain(`breaks snapshot ${id} at ./layers/index.json`)
  })

  it('kill -9 in the middle of a multipart sync, then the rerun sends only the parts that had not landed, and nothing partial was ever visible', async () => {
    const e = await env()
    const dir = await tree(40 * MIB)
    const data = await tempDir()
    const bundleId = await ok(data, ['push', dir], e)
    const isPart = (r: { method: string, url: string }): boolean => r.method === 'PUT' && r.url.includes('partNumber=')
    const partOf = (url: string): number => Number(new URL(url, 'http://x').searchParams.get('partNumber'))

    // First run: parts 1–3 land, 4 and 5 are held in flight; killed once the journal has 1–3.
    const first = await startS3Gate(server.endpoint, r => isPart(r) && partOf(r.url) > 3 ? 'hold' : undefined)
    gates.push(first)
    const firstEnv = { ...e, AWS_ENDPOINT_URL: first.endpoint, SNAPDIR_S3_STORE_ENDPOINT_URL: first.endpoint }
    const journalDir = join(e.XDG_STATE_HOME!, 'shoal', 'bucket-uploads')
    await mkdir(journalDir, { recursive: true })
    const { child, done } = spawnShoal(data, ['sync', '--id', bundleId, '--from', data, '--to', 's3://images/cli/killed'], { env: firstEnv })
    // A run that ends before three parts landed is a failure to show, not a wait to sit out.
    const landed = await Promise.race([journalWithParts(journalDir, 3, 150_000), done.then(r => { throw new Error(`the sync ended (${String(r.code)}) before three parts landed: ${r.stderr}`) })])
    child.kill('SIGKILL')
    expect((await done).signal).toBe('SIGKILL')
    expect(landed.sort()).toEqual([1, 2, 3])

    // Nothing under a final key: no object of the big file, no manifest.
    const listed = await aws(['s3api', 'list-objects-v2', '--bucket', 'images', '--prefix', 'cli/killed/'], e)
    const keys = listed.trim() === '' ? [] : (JSON.parse(listed) as { Contents?: Array<{ Key: string, Size: number }> }).Contents ?? []
    expect(keys.every(k => k.Size < 8 * MIB)).toBe(true)
    expect(keys.some(k => k.Key.includes('/.manifests/'))).toBe(false)

    const second = await startS3Gate(server.endpoint)
    gates.push(second)
    const secondEnv = { ...e, AWS_ENDPOINT_URL: second.endpoint, SNAPDIR_S3_STORE_ENDPOINT_URL: second.endpoint }
    const rerun = await ok(data, ['--json', 'sync', '--id', bundleId, '--from', data, '--to', 's3://images/cli/killed'], secondEnv)
    expect(JSON.parse(rerun)).toMatchObject({ resumedBytes: 3 * 8 * MIB })
    expect(second.requests.filter(isPart).map(r => partOf(r.url)).sort()).toEqual([4, 5])
    expect(await readdir(journalDir)).toEqual([])

    const id = (JSON.parse(rerun) as { id: string }).id
    expect(await ok(undefined, ['verify', '--store', 's3://images/cli/killed', '--id', id], e)).toMatch(/^ok: 1 snapshot\(s\), 4 object/)
  })

  it('a gateway started with --seed-from a bucket takes the snapshot in and an edge pulls it over the swarm', async () => {
    const e = await env()
    const dir = await tree(3 * MIB)
    const id = await ok(undefined, ['push', '--store', 's3://images/cli/seed', dir], e)
    const gateway = await startDaemonProcess(await tempDir(), ['--no-mdns', '--gateway', '--seed-from', 's3://images/cli/seed'], e)
    try {
      const seeded = JSON.parse(await logLine(gateway, 'seed: snapshot in the store', 120_000)) as { id: string, bundleId: string, copiedObjects: number }
      expect(seeded).toMatchObject({ id, copiedObjects: 4 })
      const edge = await startDaemonProcess(await tempDir(), ['--no-mdns', '--bootstrap', gateway.address], e)
      try {
        const out = join(await tempDir(), 'out')
        const pulled = await shoal(undefined, ['--api', edge.api, 'pull', seeded.bundleId, out], { env: e, timeoutMs: 60_000 })
        expect(pulled.code, pulled.stderr).toBe(0)
        expect(await treeManifest(out)).toBe(await treeManifest(dir))
      } finally {
        await edge.stop()
      }
    } finally {
      await gateway.stop()
    }
  })

  it('says which bucket is missing and which credentials were refused, with its exit code', async () => {
    const e = await env()
    const dir = await tree(10)
    const missing = await shoal(undefined, ['push', '--store', 's3://no-such-bucket/x', dir], { env: e })
    expect(missing.code).toBe(3)
    expect(missing.stderr).toMatch(/bucket no-such-bucket does not exist .*\[BUCKET_NOT_FOUND\]/)
    const refused = await shoal(undefined, ['push', '--store', 's3://images/x', dir], { env: { ...e, AWS_SECRET_ACCESS_KEY: 'wrong' } })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/rejected the credentials from AWS_ACCESS_KEY_ID .*\[BUCKET_CREDENTIALS_REJECTED\]/)
    const unknown = await shoal(undefined, ['pull', '--store', 's3://images/x', '--id', 'a'.repeat(64)], { env: e })
    expect(unknown.code).toBe(3)
    expect(unknown.stderr).toContain('no snapshot aaaa')
  })
})

/** Resolves with the first JSON log line of `daemon` whose message is `msg`. */
async function logLine (daemon: DaemonProcess, msg: string, timeoutMs: number): Promise<string> {
  const find = (): string | undefined => daemon.logs().split('\n').find(line => line.includes(`"msg":"${msg}"`))
  const deadline = AbortSignal.timeout(timeoutMs)
  for (;;) {
    const found = find()
    if (found !== undefined) return found
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(new Error(`no log line "${msg}" within ${timeoutMs} ms:\n${daemon.logs()}`)) }
      deadline.addEventListener('abort', onAbort, { once: true })
      daemon.child.stderr!.once('data', () => {
        deadline.removeEventListener('abort', onAbort)
        // The helper's own listener appends this chunk to logs() after this one returns.
        setImmediate(resolve)
      })
    })
  }
}

/** Resolves with the part numbers in the (single) upload journal once it lists `count` of them. */
async function journalWithParts (dir: string, count: number, timeoutMs: number): Promise<number[]> {
  const read = async (): Promise<number[] | undefined> => {
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) continue
      try {
        const parts = Object.keys((JSON.parse(await readFile(join(dir, name), 'utf8')) as { parts: Record<string, unknown> }).parts).map(Number)
        if (parts.length >= count) return parts
      } catch {}
    }
    return undefined
  }
  const watcher = watch(dir)
  try {
    const deadline = AbortSignal.timeout(timeoutMs)
    for (;;) {
      // Listen before reading: a change while the directory is read must not be missed (the
      // last journal write before the held parts is the one this waits for).
      const changed = new Promise<void>((resolve, reject) => {
        const onAbort = (): void => { reject(new Error(`the upload journal in ${dir} did not reach ${count} parts in ${timeoutMs} ms`)) }
        deadline.addEventListener('abort', onAbort, { once: true })
        watcher.once('change', () => {
          deadline.removeEventListener('abort', onAbort)
          resolve()
        })
      })
      changed.catch(() => {})
      const found = await read()
      if (found !== undefined) return found
      await changed
    }
  } finally {
    watcher.close()
  }
}
