import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'vitest'
import { generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import { createHttpApi, REGISTRY_ERRORS, type HttpApi, type HttpApiComponents, type HttpApiInit, type RegistryErrorCode } from '../../src/http/index.js'
import { openStore, pushTree, type Store } from '../../src/store/index.js'

const execFileAsync = promisify(execFile)

/** 3 MiB of base layer: objects over one chunk (chunk tables, ranges across chunks) and still quick. */
export const BASE_BYTES = 3 * 1024 * 1024

export interface RunningApi {
  api: HttpApi
  /** `http://127.0.0.1:PORT` */
  base: string
  /** `127.0.0.1:PORT`, for `docker://` references. */
  host: string
}

/** Starts an API over a real socket on a free loopback port. */
export async function startApi (components: HttpApiComponents, init: HttpApiInit = {}): Promise<RunningApi> {
  const api = createHttpApi(components, init)
  const { port } = await api.listen('127.0.0.1', 0)
  return { api, base: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}` }
}

/** A fresh store in its own temp dir; `close` closes it and removes the dir. */
export async function tempStore (options: { directIo?: boolean } = {}): Promise<{ store: Store, dir: string, close: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-http-store-'))
  const store = await openStore({ dir, fsync: false, directIo: options.directIo })
  return { store, dir, close: async () => { await store.close(); await rm(dir, { recursive: true, force: true }) } }
}

/** The generated layouts (app1..3, multi), in a temp dir removed by `close`. */
export async function tempImages (): Promise<{ dir: string, images: GeneratedImages, close: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-http-images-'))
  const images = await generateImages(dir, { baseBytes: BASE_BYTES, seed: 11 })
  return { dir, images, close: async () => { await rm(dir, { recursive: true, force: true }) } }
}

export async function pushLayouts (store: Store, images: GeneratedImages, names: string[]): Promise<void> {
  for (const name of names) {
    const layout = images.layouts[name]
    if (layout === undefined) throw new Error(`no generated layout ${name}`)
    await pushTree(store, layout)
  }
}

/** Runs skopeo with a fixed umask (its layout modes follow it); returns stdout. */
export async function skopeo (args: string[]): Promise<string> {
  const quoted = args.map(arg => `'${arg.replaceAll("'", "'\\''")}'`).join(' ')
  const { stdout } = await execFileAsync('sh', ['-c', `umask 022 && exec skopeo ${quoted}`], { maxBuffer: 16 * 1024 * 1024, timeout: 30_000 })
  return stdout
}

export function sha256Of (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Blob name → sha256 of its bytes, for every blob of a layout (so equality means equal bytes, not just names). */
export async function layoutBlobs (layout: string): Promise<Record<string, string>> {
  const dir = join(layout, 'blobs', 'sha256')
  const out: Record<string, string> = {}
  for (const name of (await readdir(dir)).sort()) out[name] = sha256Of(await readFile(join(dir, name)))
  return out
}

export async function readBlob (layout: string, digest: string): Promise<Buffer> {
  return await readFile(join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, '')))
}

export { topDigest } from '../../scripts/gen-images.js'

export interface ErrorBody { errors: Array<{ code: string, message: string, detail?: unknown }> }

/**
 * Asserts a response is the spec's JSON error for `code`: the catalogue's status, JSON
 * content type, and a body of the shape `{"errors":[{"code","message","detail"?}]}`.
 */
export async function expectRegistryError (response: Response, code: RegistryErrorCode): Promise<ErrorBody> {
  expect(response.status).toBe(REGISTRY_ERRORS[code].status)
  expect(response.headers.get('content-type')).toBe('application/json')
  const text = await response.text()
  const body = JSON.parse(text) as ErrorBody
  expectSpecErrorBody(body)
  expect(body.errors[0]?.code).toBe(code)
  return body
}

export function expectSpecErrorBody (body: unknown): void {
  expect(body).toEqual({ errors: expect.any(Array) as unknown })
  const { errors } = body as ErrorBody
  expect(errors.length).toBeGreaterThan(0)
  for (const entry of errors) {
    expect(Object.keys(entry).every(k => k === 'code' || k === 'message' || k === 'detail')).toBe(true)
    expect(Object.keys(REGISTRY_ERRORS)).toContain(entry.code)
    expect(typeof entry.message).toBe('string')
  }
}

/** Files under the store's objects/ (complete objects). */
export async function objectCount (storeDir: string): Promise<number> {
  const entries = await readdir(join(storeDir, 'objects'), { recursive: true, withFileTypes: true })
  return entries.filter(e => e.isFile()).length
}
