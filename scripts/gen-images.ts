// Deterministic synthetic OCI image layouts for tests and benchmarks.
//
//   node --import tsx scripts/gen-images.ts OUTDIR [--base-mb 64] [--seed N]
//
// Writes OUTDIR/app1, app2, app3 (one image each: a shared base layer plus one or
// two small app layers) and OUTDIR/multi (a linux/amd64 + linux/arm64 image index
// over the same base layer). The same options give the same bytes on every run: all
// content comes from AES-CTR keystreams keyed by the seed, all timestamps are fixed,
// and modes are set explicitly (files 0644, directories 0755) whatever the umask.
import { createCipheriv } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { chmod, copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { pathToFileURL } from 'node:url'
import { createGzip } from 'node:zlib'
import tar from 'tar-stream'
import { createSha256, sha256Hex, type Sha256Hasher } from '../src/hash/index.js'
import {
  ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME, LAYOUT_DIR_MODE, LAYOUT_FILE_MODE,
  OCI_IMAGE_CONFIG, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, OCI_LAYER_TAR_GZIP, type Descriptor, type Platform,
} from '../src/oci/index.js'

const MIB = 1024 * 1024
export const DEFAULT_BASE_BYTES = 64 * MIB
export const DEFAULT_SEED = 1
/** The tag every generated image gets (`org.opencontainers.image.ref.name`). */
export const GENERATED_REF_NAME = '1.0'
export const GENERATED_REGISTRY = 'registry.example.com/shoal'
export const APP_NAMES = ['app1', 'app2', 'app3'] as const

// A fixed instant for tar mtimes and config `created`: wall-clock time would change the bytes.
const FIXED_TIME = new Date('2024-01-01T00:00:00Z')
const BASE_FILE_BYTES = 4 * MIB
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

export interface GenerateImagesOptions {
  /** Total size of the files in the shared base layer (the gzip'ed blob is slightly larger: the data is incompressible). */
  baseBytes?: number
  seed?: number
  signal?: AbortSignal
}

export interface GeneratedImages {
  /** Layout directory per image: app1, app2, app3, multi. */
  layouts: Record<string, string>
  /** Descriptor of the base layer every image shares. */
  baseLayer: Descriptor
}

interface LayerFile { path: string, size: number }
interface Layer { descriptor: Descriptor, diffId: string, comment: string }

/** Writes the four layouts under outDir, replacing earlier ones of the same names. */
export async function generateImages (outDir: string, options: GenerateImagesOptions = {}): Promise<GeneratedImages> {
  const { baseBytes = DEFAULT_BASE_BYTES, seed = DEFAULT_SEED, signal } = options
  if (!Number.isSafeInteger(baseBytes) || baseBytes < 1) throw new RangeError(`baseBytes must be a positive integer, got ${baseBytes}`)
  const names = [...APP_NAMES, 'multi']
  await makeDir(outDir)
  for (const name of names) await rm(join(outDir, name), { recursive: true, force: true })
  const layouts = Object.fromEntries(names.map(name => [name, join(outDir, name)]))
  for (const dir of Object.values(layouts)) await makeLayoutDirs(dir)

  // The base layer is written once and copied: generating 64 MiB four times would dominate the run.
  const [firstDir, ...otherDirs] = Object.values(layouts) as [string, ...string[]]
  const base = await writeLayer(firstDir, seed, 'base', baseFiles(baseBytes), signal)
  for (const dir of otherDirs) await copyBlob(firstDir, dir, base.descriptor)

  for (const [i, app] of APP_NAMES.entries()) {
    const dir = join(outDir, app)
    const layers = [base]
    layers.push(await writeLayer(dir, seed, `${app}-bin`, appFiles(app, 'bin', 24 * 1024 + i * 4096), signal))
    // app2 has two app layers, so tests see images with different layer counts.
    if (app === 'app2') layers.push(await writeLayer(dir, seed, `${app}-etc`, appFiles(app, 'etc', 2048), signal))
    const manifest = await writeImage(dir, app, { architecture: 'amd64', os: 'linux' }, layers)
    await writeIndexJson(dir, manifest, app)
  }

  const multiDir = join(outDir, 'multi')
  const platforms: Platform[] = [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux', variant: 'v8' }]
  const manifests: Descriptor[] = []
  for (const platform of platforms) {
    const label = `multi-${platform.architecture}`
    const layer = await writeLayer(multiDir, seed, label, appFiles(label, 'bin', 16 * 1024), signal)
    manifests.push({ ...await writeImage(multiDir, 'multi', platform, [base, layer]), platform })
  }
  const imageIndex = await writeJsonBlob(multiDir, OCI_IMAGE_INDEX, { schemaVersion: 2, mediaType: OCI_IMAGE_INDEX, manifests })
  await writeIndexJson(multiDir, imageIndex, 'multi')
  return { layouts, baseLayer: base.descriptor }
}

function baseFiles (totalBytes: number): LayerFile[] {
  const files: LayerFile[] = []
  for (let offset = 0, i = 0; offset < totalBytes; offset += BASE_FILE_BYTES, i++) {
    files.push({ path: `usr/share/shoal-base/part-${String(i).padStart(4, '0')}.bin`, size: Math.min(BASE_FILE_BYTES, totalBytes - offset) })
  }
  return files
}

function appFiles (app: string, kind: string, size: number): LayerFile[] {
  return [{ path: `opt/${app}/${kind}/${app}.bin`, size }, { path: `opt/${app}/${kind}/VERSION`, size: 64 }]
}

/**
 * Streams one gzip'ed tar layer straight to its blob file, hashing the tar (the
 * diff_id) and the gzip stream (the blob digest) on the way: a layer is never in memory.
 */
async function writeLayer (layoutDir: string, seed: number, label: string, files: LayerFile[], signal: AbortSignal | undefined): Promise<Layer> {
  const tmpPath = join(layoutDir, 'blobs', 'sha256', `.tmp-${label}`)
  const diffHash = new HashTap()
  const blobHash = new HashTap()
  const pack = tar.pack()
  // Level 1: the content is incompressible, so higher levels only cost time.
  const written = pipeline(pack, diffHash, createGzip({ level: 1 }), blobHash, createWriteStream(tmpPath, { mode: LAYOUT_FILE_MODE }), { signal })
  try {
    for (const dir of parentDirs(files)) await addEntry(pack, { name: `${dir}/`, type: 'directory', mode: LAYOUT_DIR_MODE })
    for (const file of files) {
      await addEntry(pack, { name: file.path, type: 'file', mode: LAYOUT_FILE_MODE, size: file.size }, keystream(seed, `${label}/${file.path}`, file.size))
    }
    pack.finalize()
  } catch (err) {
    pack.destroy(err as Error)
  }
  await written
  const hex = blobHash.hexDigest()
  await rename(tmpPath, join(layoutDir, 'blobs', 'sha256', hex))
  await chmod(join(layoutDir, 'blobs', 'sha256', hex), LAYOUT_FILE_MODE)
  return {
    descriptor: { mediaType: OCI_LAYER_TAR_GZIP, digest: `sha256:${hex}`, size: blobHash.bytes },
    diffId: `sha256:${diffHash.hexDigest()}`,
    comment: `shoal gen-images: ${label}`,
  }
}

/** Adds one tar entry with fixed owner and time, feeding its content with backpressure. */
async function addEntry (pack: tar.Pack, header: Partial<tar.Header> & { name: string }, content?: Iterable<Buffer>): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry({ uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: FIXED_TIME, ...header }, err => { if (err) reject(err); else resolve() })
    if (content === undefined) return
    const pieces = content[Symbol.iterator]()
    const pump = (): void => {
      for (let next = pieces.next(); !next.done; next = pieces.next()) {
        if (!sink.write(next.value)) { sink.once('drain', pump); return }
      }
      sink.end(undefined)
    }
    pump()
  })
}

/** `size` pseudo-random bytes: the AES-128-CTR keystream under a key derived from seed and label. */
function * keystream (seed: number, label: string, size: number): Generator<Buffer> {
  const key = Buffer.from(sha256Hex(Buffer.from(`shoal-gen-images/${seed}/${label}`)), 'hex').subarray(0, 16)
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  const zeros = Buffer.alloc(MIB)
  for (let left = size; left > 0; left -= MIB) yield cipher.update(zeros.subarray(0, Math.min(MIB, left)))
}

function parentDirs (files: LayerFile[]): string[] {
  const dirs = new Set<string>()
  for (const file of files) {
    const parts = file.path.split('/').slice(0, -1)
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'))
  }
  return [...dirs].sort()
}

async function writeImage (layoutDir: string, name: string, platform: Platform, layers: Layer[]): Promise<Descriptor> {
  const config = {
    created: FIXED_TIME.toISOString(),
    architecture: platform.architecture,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    os: platform.os,
    config: { Env: [PATH_ENV], Cmd: [`/opt/${name}/bin/${name}.bin`], Labels: { 'org.opencontainers.image.title': name } },
    rootfs: { type: 'layers', diff_ids: layers.map(layer => layer.diffId) },
    history: layers.map(layer => ({ created: FIXED_TIME.toISOString(), created_by: layer.comment })),
  }
  const configDescriptor = await writeJsonBlob(layoutDir, OCI_IMAGE_CONFIG, config)
  return await writeJsonBlob(layoutDir, OCI_IMAGE_MANIFEST, {
    schemaVersion: 2,
    mediaType: OCI_IMAGE_MANIFEST,
    config: configDescriptor,
    layers: layers.map(layer => layer.descriptor),
  })
}

/** The digest a layout's index.json names first: the image (or, for `multi`, the image index) a generated layout holds. */
export async function topDigest (layout: string): Promise<string> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
  const digest = index.manifests[0]?.digest
  if (digest === undefined) throw new Error(`${layout}/index.json names no image`)
  return digest
}

async function writeIndexJson (layoutDir: string, manifest: Descriptor, name: string): Promise<void> {
  const annotations = {
    [ANNOTATION_CONTAINERD_IMAGE_NAME]: `${GENERATED_REGISTRY}/${name}:${GENERATED_REF_NAME}`,
    [ANNOTATION_REF_NAME]: GENERATED_REF_NAME,
  }
  const index = { schemaVersion: 2, mediaType: OCI_IMAGE_INDEX, manifests: [{ ...manifest, annotations }] }
  await writeModeFile(join(layoutDir, 'index.json'), Buffer.from(JSON.stringify(index)))
}

async function writeJsonBlob (layoutDir: string, mediaType: string, value: unknown): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(value))
  const hex = sha256Hex(bytes)
  await writeModeFile(join(layoutDir, 'blobs', 'sha256', hex), bytes)
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length }
}

async function copyBlob (fromDir: string, toDir: string, descriptor: Descriptor): Promise<void> {
  const name = descriptor.digest.slice('sha256:'.length)
  const target = join(toDir, 'blobs', 'sha256', name)
  await copyFile(join(fromDir, 'blobs', 'sha256', name), target)
  await chmod(target, LAYOUT_FILE_MODE)
}

async function makeLayoutDirs (layoutDir: string): Promise<void> {
  for (const dir of [layoutDir, join(layoutDir, 'blobs'), join(layoutDir, 'blobs', 'sha256')]) await makeDir(dir)
  await writeModeFile(join(layoutDir, 'oci-layout'), Buffer.from('{"imageLayoutVersion":"1.0.0"}'))
}

// chmod after create: mkdir and open apply the umask, and the modes are part of the fixture.
async function makeDir (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  await chmod(dir, LAYOUT_DIR_MODE)
}

async function writeModeFile (path: string, bytes: Buffer): Promise<void> {
  await writeFile(path, bytes)
  await chmod(path, LAYOUT_FILE_MODE)
}

/** A pass-through that hashes and counts what flows by. */
class HashTap extends Transform {
  private readonly hasher: Sha256Hasher = createSha256()
  bytes = 0

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hasher.update(chunk)
    this.bytes += chunk.length
    callback(null, chunk)
  }

  hexDigest (): string {
    return this.hasher.digest('hex')
  }
}

function parseArgs (argv: string[]): { outDir: string, baseBytes: number, seed: number } {
  let outDir: string | undefined
  let baseBytes = DEFAULT_BASE_BYTES
  let seed = DEFAULT_SEED
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--base-mb') baseBytes = Math.round(Number(argv[++i]) * MIB)
    else if (arg === '--seed') seed = Number(argv[++i])
    else if (arg !== undefined && !arg.startsWith('--') && outDir === undefined) outDir = arg
    else throw new Error(`unexpected argument ${arg ?? ''}`)
  }
  if (outDir === undefined) throw new Error('usage: gen-images.ts OUTDIR [--base-mb 64] [--seed N]')
  if (!Number.isSafeInteger(baseBytes) || baseBytes < 1) throw new Error('--base-mb must be a positive number')
  if (!Number.isSafeInteger(seed)) throw new Error('--seed must be an integer')
  return { outDir, baseBytes, seed }
}

async function main (): Promise<void> {
  const { outDir, baseBytes, seed } = parseArgs(process.argv.slice(2))
  const started = Date.now()
  const result = await generateImages(outDir, { baseBytes, seed })
  process.stdout.write(`${JSON.stringify({ ...result, seconds: (Date.now() - started) / 1000 }, null, 2)}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`gen-images: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
