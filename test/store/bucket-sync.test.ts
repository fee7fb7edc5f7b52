import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, open as openFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { snapdirId } from '../../src/manifest/index.js'
import { BucketStore, bundleOfTree, exportTree, openStore, pushTree, pushTreeTo, syncSnapshot, verifyStore, type Store, type SyncEndpoint } from '../../src/store/index.js'
import { startS3Gate, startS3Server, type S3Gate, type S3Server } from '../helpers/s3-server.js'
import { useTempDirs } from '../helpers/temp-dir.js'
import { treeManifest } from '../helpers/tree-manifest.js'

const KIB = 1024
const MIB = 1024 * KIB
/** Small parts (S3's minimum), so that multipart paths run on objects of a few MiB. */
const PART_BYTES = 5 * MIB

describe('sync with s3:// and gs:// stores (s3rver on loopback)', () => {
  const tempDir = useTempDirs()
  let server: S3Server
  let serverDir: string
  const opened: Array<{ close: () => unknown }> = []

  beforeAll(async () => {
    serverDir = await mkdtemp(join(tmpdir(), 'shoal-s3rver-'))
    server = await startS3Server(serverDir, ['images', 'images-eu', 'other'])
  })
  afterAll(async () => {
    await server.stop()
    await rm(serverDir, { recursive: true, force: true })
  })
  afterEach(async () => {
    for (const one of opened.splice(0)) await one.close()
  })

  async function newStore (): Promise<Store> {
    const store = await openStore({ dir: await tempDir() })
    opened.push(store)
    return store
  }

  async function bucket (spec: string, env: Record<string, string> = server.env, init: { attempts?: number, retryBaseMs?: number } = {}): Promise<BucketStore> {
    const store = await BucketStore.open(spec, env, { journalDir: await tempDir(), partBytes: PART_BYTES, retryBaseMs: 5, ...init })
    opened.push(store)
    return store
  }

  const shoalEnd = (store: Store): SyncEndpoint => ({ kind: 'shoal', store })
  const bucketEnd = (store: BucketStore): SyncEndpoint => ({ kind: 'bucket', store })

  /** A tree with a multipart-sized file, a small one, an empty one and a nested directory. */
  async function tree (): Promise<string> {
    const dir = await tempDir()
    await mkdir(join(dir, 'sub'))
    await writeFile(join(dir, 'big.bin'), randomBytes(12 * MIB + 123))
    await writeFile(join(dir, 'sub', 'small.txt'), 'small\n')
    await writeFile(join(dir, 'sub', 'empty'), '')
    return dir
  }

  async function gated (refuse?: Parameters<typeof startS3Gate>[1]): Promise<{ gate: S3Gate, env: Record<string, string> }> {
    const gate = await startS3Gate(server.endpoint, refuse)
    opened.push(gate)
    return { gate, env: { ...server.env, AWS_ENDPOINT_URL: gate.endpoint, SNAPDIR_S3_STORE_ENDPOINT_URL: gate.endpoint, SHOAL_GS_ENDPOINT_URL: gate.endpoint } }
  }

  it('writes the keys and bytes snapdir-s3-store writes (golden values from snapdir\'s own s3 test)', async () => {
    // snapdir-s3-store's test suite: foo and bar (mode 600) in a directory (700), and the md5
    // of each key it expects after `snapdir push --store s3://…`.
    const dir = await tempDir()
    await writeFile(join(dir, 'foo'), 'foo\n')
    await writeFile(join(dir, 'bar'), 'bar\n')
    await chmod(join(dir, 'foo'), 0o600)
    await chmod(join(dir, 'bar'), 0o600)
    await chmod(dir, 0o700)
    const { bundle } = await bundleOfTree(dir)
    const { gate, env } = await gated()
    const store = await bucket('s3://images/some/prefix/', env)
    const result = await pushTreeTo(dir, bundle, bucketEnd(store))
    expect(result.id).toBe('aa91e498f401ea9e6ddbaa1138a0dbeb030fab8defc1252d80c77ebefafbc70d')

    const listed = new Map<string, string>()
    for await (const object of store.client.list('some/prefix/')) listed.set(object.key, md5(await readAll(store.client.read(object.key))))
    expect(Object.fromEntries(listed)).toEqual({
      'some/prefix/.manifests/aa9/1e4/98f/401ea9e6ddbaa1138a0dbeb030fab8defc1252d80c77ebefafbc70d': '55094bca5d56d02394d874d1900cfb48',
      'some/prefix/.objects/49d/c87/0df/1de7fd60794cebce449f5ccdae575affaa67a24b62acb03e039db92': 'd3b07384d113edec49eaa6238ad5ff00',
      'some/prefix/.objects/b31/99d/36d/434044e6778b77d13f8dbaba32a73d9522c1ae8d0f73ef1ff14e71f': 'c157a79031e1c40f85931829bc5fc552',
    })
    // Objects before the manifest, as snapdir's push orders them.
    const puts = gate.requests.filter(r => r.method === 'PUT').map(r => r.url)
    expect(puts.at(-1)).toContain('/.manifests/')
    expect(puts.filter(u => u.includes('/.objects/'))).toHaveLength(2)
  })

  it('pushes a data dir\'s bundle to s3, syncs it to gs and back into a new data dir: verify clean, export identical', async () => {
    const dir = await tree()
    const source = await newStore()
    const { bundleId } = await pushTree(source, dir)
    const s3 = await bucket('s3://images/oci')
    const out = await syncSnapshot(bundleId, shoalEnd(source), bucketEnd(s3))
    expect(out).toMatchObject({ copiedObjects: 3, skippedObjects: 0, resumedBytes: 0 })

    const gs = await bucket('gs://images-eu/oci')
    const across = await syncSnapshot(out.id, bucketEnd(s3), bucketEnd(gs))
    expect(across).toMatchObject({ id: out.id, copiedObjects: 3 })

    const target = await newStore()
    const back = await syncSnapshot(out.id, bucketEnd(gs), shoalEnd(target))
    expect(back).toMatchObject({ id: bundleId, copiedObjects: 3 })
    expect(await verifyStore(target)).toMatchObject({ ok: true, bundles: 1, objectsChecked: 3 })
    const checkout = join(await tempDir(), 'checkout')
    await exportTree(target, bundleId, checkout)
    expect(await treeManifest(checkout)).toBe(await treeManifest(dir))
    expect(await gs.readManifest(out.id)).toBe((await source.requireBundle(bundleId)).manifest.manifestText.replace(/\n*$/, '\n'))
  })

  it('copies between buckets only the objects the destination lacks (counted PUTs), and a rerun sends nothing', async () => {
    const one = await tree()
    const two = await tempDir()
    await writeFile(join(two, 'shared.txt'), 'small\n')
    await writeFile(join(two, 'new.bin'), randomBytes(300 * KIB))
    const local = await newStore()
    const first = await pushTree(local, one)
    const second = await pushTree(local, two)
    const source = await bucket('s3://images/many')
    const a = await syncSnapshot(first.bundleId, shoalEnd(local), bucketEnd(source))
    const b = await syncSnapshot(second.bundleId, shoalEnd(local), bucketEnd(source))

    const { gate, env } = await gated()
    const dest = await bucket('s3://other/copy', env)
    await syncSnapshot(a.id, bucketEnd(source), bucketEnd(dest))
    gate.requests.length = 0
    const again = await syncSnapshot(b.id, bucketEnd(source), bucketEnd(dest))
    expect(again).toMatchObject({ copiedObjects: 1, skippedObjects: 1, copiedBytes: 300 * KIB })
    // One object PUT (new.bin) and the manifest: small.txt was there already.
    expect(gate.requests.filter(r => r.method === 'PUT').map(r => r.url.includes('/.manifests/') ? 'manifest' : 'object')).toEqual(['object', 'manifest'])

    gate.requests.length = 0
    expect(await syncSnapshot(b.id, bucketEnd(source), bucketEnd(dest))).toMatchObject({ copiedObjects: 0, skippedObjects: 2 })
    expect(gate.requests.filter(r => r.method === 'PUT' && r.url.includes('/.objects/'))).toEqual([])
    expect(gate.requests.filter(r => r.method === 'GET' && r.url.includes('/.objects/'))).toEqual([])
  })

  it('refuses a corrupt object in the source bucket, names it, and publishes no manifest in the destination', async () => {
    const dir = await tree()
    const local = await newStore()
    const { bundleId, bundle } = await pushTree(local, dir)
    const source = await bucket('s3://images/corrupt')
    const { id } = await syncSnapshot(bundleId, shoalEnd(local), bucketEnd(source))
    // Replace the small file's object in the bucket with other bytes of the same size.
    const small = bundle.entries.find(e => e.path === './sub/small.txt')!.checksum
    await source.client.put(source.objectKey(small), Buffer.from('SMALL\n'))

    const { gate, env } = await gated()
    const dest = await bucket('gs://images-eu/corrupt', env)
    const refused = syncSnapshot(id, bucketEnd(source), bucketEnd(dest))
    await expect(refused).rejects.toMatchObject({ code: 'OBJECT_CORRUPT', name: 'SourceObjectCorruptError' })
    await expect(refused).rejects.toThrow(source.objectWhere(small))
    expect(gate.requests.filter(r => r.method === 'PUT' && r.url.includes(small.slice(9)))).toEqual([])
    expect(await dest.hasManifest(id)).toBe(false)
    await expect(dest.readManifest(id)).rejects.toMatchObject({ code: 'MANIFEST_NOT_FOUND' })

    // Into a data dir: refused the same way, no bundle there.
    const target = await newStore()
    await expect(syncSnapshot(id, bucketEnd(source), shoalEnd(target))).rejects.toMatchObject({ code: 'OBJECT_CORRUPT' })
    expect(await target.bundleIds()).toEqual([])
  })

  it('refuses a corrupt part of a multipart object and leaves nothing under its key', async () => {
    const dir = await tree()
    const local = await newStore()
    const { bundleId, bundle } = await pushTree(local, dir)
    const big = bundle.entries.find(e => e.path === './big.bin')!.checksum
    // Damage the local copy in its middle: the upload from it must not complete.
    const file = await openFile(local.objectPath(big), 'r+')
    try {
      await file.write(Buffer.from('corrupt'), 0, 7, 7 * MIB)
    } finally {
      await file.close()
    }
    const { gate, env } = await gated()
    const dest = await bucket('s3://images/bad-multipart', env)
    await expect(syncSnapshot(bundleId, shoalEnd(local), bucketEnd(dest))).rejects.toMatchObject({ code: 'OBJECT_CORRUPT' })
    expect(await dest.client.head(dest.objectKey(big))).toBeUndefined()
    expect(gate.requests.some(r => r.method === 'POST' && r.url.includes('uploads'))).toBe(true)
    expect(gate.requests.some(r => r.method === 'POST' && r.url.includes('uploadId='))).toBe(false)
    expect(await dest.snapshots()).toEqual([])
  })

  it('rides out an endpoint that answers 503 SlowDown for a while, then completes', async () => {
    const dir = await tree()
    const local = await newStore()
    const { bundleId } = await pushTree(local, dir)
    let refusals = 0
    const { gate, env } = await gated(() => refusals++ < 9 ? 503 : undefined)
    const dest = await bucket('s3://images/flaky', env, { attempts: 12, retryBaseMs: 5 })
    const out = await syncSnapshot(bundleId, shoalEnd(local), bucketEnd(dest))
    expect(gate.requests.filter(r => r.status === 503)).toHaveLength(9)
    const target = await newStore()
    await syncSnapshot(out.id, bucketEnd(dest), shoalEnd(target))
    expect(await verifyStore(target)).toMatchObject({ ok: true, objectsChecked: 3 })
  })

  it('names the bucket and key when throttling outlasts the retries', async () => {
    const { env } = await gated(({ method }) => method === 'HEAD' ? 503 : undefined)
    const dest = await bucket('s3://images/throttled', env, { attempts: 3, retryBaseMs: 1 })
    const dir = await tree()
    const { bundle } = await bundleOfTree(dir)
    const failed = pushTreeTo(dir, bundle, bucketEnd(dest))
    await expect(failed).rejects.toMatchObject({ name: 'BucketError', code: 'BUCKET_THROTTLED' })
    await expect(failed).rejects.toThrow(/s3:\/\/images\/throttled\/\.objects\/[0-9a-f/]+: .*3 attempts/)
  })

  it('says clearly when the bucket does not exist or the credentials are refused', async () => {
    await expect(bucket('s3://no-such-bucket/x')).rejects.toMatchObject({ code: 'BUCKET_NOT_FOUND', message: expect.stringContaining('no-such-bucket') as unknown })
    await expect(bucket('s3://images/x', { ...server.env, AWS_ACCESS_KEY_ID: 'WRONG' })).rejects.toMatchObject({ code: 'BUCKET_CREDENTIALS_REJECTED', message: expect.stringContaining('AWS_ACCESS_KEY_ID') as unknown })
    await expect(bucket('s3://images/x', { ...server.env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' })).rejects.toMatchObject({ code: 'BUCKET_CREDENTIALS_REJECTED', message: expect.stringContaining('SignatureDoesNotMatch') as unknown })
    await expect(bucket('s3://images/x', { ...server.env, AWS_SESSION_TOKEN: 'EXPIRED' })).rejects.toMatchObject({ code: 'BUCKET_CREDENTIALS_EXPIRED', message: expect.stringContaining('have expired') as unknown })
    await expect(bucket('s3://images/x', { ...server.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' })).rejects.toMatchObject({ code: 'BUCKET_CREDENTIALS_MISSING' })
    await expect(bucket('s3://images/../x')).rejects.toMatchObject({ code: 'STORE_URL_INVALID' })
    const s3 = await bucket('s3://images/empty')
    await expect(syncSnapshot('../../etc/passwd', bucketEnd(s3), bucketEnd(s3))).rejects.toMatchObject({ code: 'SNAPSHOT_ID_INVALID' })
    await expect(syncSnapshot(snapdirId('F 644 x 1 ./a\n'), bucketEnd(s3), bucketEnd(s3))).rejects.toMatchObject({ code: 'MANIFEST_NOT_FOUND', message: expect.stringContaining('s3://images/empty') as unknown })
  })
})

function md5 (bytes: Buffer): string { return createHash('md5').update(bytes).digest('hex') }

async function readAll (source: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of source) chunks.push(chunk)
  return Buffer.concat(chunks)
}

