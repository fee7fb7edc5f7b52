import { sha256Hex } from '../hash/index.js'
import { walkImage, type ManifestDocument } from '../oci/index.js'
import { ingestBlobBytes, ingestBlobFile, type GrowingFile, type GrowingFileReader, type Store } from '../store/index.js'
import { downloadToFile } from './blob-download.js'
import {
  DEFAULT_MAX_UPSTREAM_BLOB_BYTES, DOCKER_HUB_HOSTS, DOCKER_HUB_NAMESPACE, MAX_INDEX_DEPTH, MAX_UPSTREAM_MANIFEST_BYTES,
  UPSTREAM_BODY_IDLE_TIMEOUT_MS,
} from './constants.js'
import { UpstreamConfigError, UpstreamDigestMismatchError, UpstreamManifestInvalidError, UpstreamUnavailableError } from './errors.js'
import { MANIFEST_ACCEPT, parseUpstreamManifest } from './manifest-references.js'
import { readLimited } from './read-limited.js'
import { RegistryClient } from './registry-client.js'
import { SingleFlight } from './single-flight.js'
import { TokenAuth, type Credentials } from './token-auth.js'

export interface UpstreamComponents {
  store: Store
}

export interface UpstreamInit {
  /** The origin registry: `https://registry-1.docker.io`, `http://127.0.0.1:5000`. */
  url: string
  /** Basic credentials for the token service (or a Basic challenge); anonymous without. */
  credentials?: Credentials
  /** Largest blob fetched when no descriptor gives its size (default 64 GiB). */
  maxBlobBytes?: number
  bodyIdleTimeoutMs?: number
  headersTimeoutMs?: number
  /** Called with every piece of blob bytes received, for metrics. */
  onBytesReceived?: (bytes: number) => void
  /** For tests: a fetch to use instead of the global one. */
  fetch?: typeof fetch
}

/** A manifest (or index) fetched and stored, with every blob its image names. */
export interface FetchedManifest {
  mediaType: string
  digest: string
  size: number
  /** Configs and layers of the image, of every child manifest of an index; not yet fetched. */
  blobs: Array<{ digest: string, size: number }>
}

/**
 * The client of one origin registry for pull-through: it resolves a tag (or digest) to a
 * manifest, checks the manifest's sha256, and stores it (and an index's child manifests);
 * it fetches blobs into the store, each verified against its sha256 while it streams to a
 * staging file and hashed once more as it becomes an object. Concurrent asks for the same
 * manifest or blob share one fetch.
 */
export class Upstream {
  readonly url: URL
  /** The registry host refs of this upstream are filed under (`docker.io` for Docker Hub). */
  readonly namespace: string
  private readonly client: RegistryClient
  private readonly manifests: SingleFlight<FetchedManifest>
  private readonly blobs: SingleFlight<void>
  /** Blobs being fetched, by sha256 hex: their staging file once the upstream answered (undefined when it was already held). */
  private readonly starting = new Map<string, Started>()
  private readonly lifetime = new AbortController()

  constructor (private readonly components: UpstreamComponents, private readonly init: UpstreamInit) {
    this.url = parseUpstreamUrl(init.url)
    this.namespace = DOCKER_HUB_HOSTS.includes(this.url.hostname) ? DOCKER_HUB_NAMESPACE : this.url.host
    const fetchImpl = init.fetch ?? fetch
    this.client = new RegistryClient(this.url, new TokenAuth(init.credentials, fetchImpl), fetchImpl)
    this.manifests = new SingleFlight(this.lifetime.signal)
    this.blobs = new SingleFlight(this.lifetime.signal)
  }

  /**
   * Whether requests for this registry host may go to this upstream: its own host (with the
   * port), and `docker.io` when the upstream is Docker Hub. See docs/architecture.md
   * "Pull-through" for the whole rule.
   */
  serves (registryHost: string): boolean {
    return registryHost === this.namespace || registryHost === this.url.host
  }

  /** Fetches and stores a manifest by tag or digest (an index with all its child manifests). */
  async fetchManifest (repository: string, reference: string, options: { signal: AbortSignal }): Promise<FetchedManifest> {
    const path = this.upstreamPath(repository)
    return await this.manifests.run(`${path}:${reference}`, async signal => await this.resolve(path, reference, signal), options.signal)
  }

  /** Fetches one blob into the store, verified; resolves once it is an object there. */
  async fetchBlob (repository: string, digest: string, options: { signal: AbortSignal, size?: number }): Promise<void> {
    const hex = sha256Of(digest)
    const path = this.upstreamPath(repository)
    await this.blobs.run(hex, async signal => {
      // Set before the first await: whoever joins this flight finds it (openBlob).
      const started = startSignal()
      this.starting.set(hex, started)
      try {
        await this.download(path, hex, options.size, signal, file => { started.resolve(file) })
        started.resolve(undefined)
      } catch (err) {
        started.reject(err)
        throw err
      } finally {
        this.starting.delete(hex)
      }
    }, options.signal)
  }

  /**
   * A blob's bytes as they arrive from the upstream (issue 8: the fleet's pull-through node
   * streams a blob on to the edges while it downloads it): joins the one fetch of the blob (or
   * starts it) and reads its staging file as it fills; a blob already held is read from the
   * store. Resolves once the upstream answered; the reader's last byte comes only once the
   * whole blob matched its sha256, and it throws if the fetch fails. Close the reader.
   */
  async openBlob (repository: string, digest: string, options: { signal: AbortSignal, size?: number }): Promise<GrowingFileReader> {
    const hex = sha256Of(digest)
    const fetched = this.fetchBlob(repository, digest, options)
    fetched.catch(() => undefined)
    const started = this.starting.get(hex)
    const file = started === undefined ? undefined : await Promise.race([started.promise, fetched.then(() => undefined)])
    if (file !== undefined) {
      try {
        return file.reader()
      } catch {
        // The fetch ended between the two looks: the blob is an object now.
      }
    }
    await fetched
    const object = await this.components.store.objectBySha256(hex)
    if (object === undefined) throw new UpstreamUnavailableError(`blob sha256:${hex} was fetched but is not in the store (removed at once?)`)
    return await this.components.store.wholeObjectReader(object)
  }

  /** Docker Hub keeps official images under `library/`: `alpine` there is `library/alpine`, as Docker's client spells it. */
  private upstreamPath (repository: string): string {
    return this.namespace === DOCKER_HUB_NAMESPACE && !repository.includes('/') ? `library/${repository}` : repository
  }

  /** Stops every fetch in flight and waits for them to end (their staging files are removed as they fail). */
  async close (): Promise<void> {
    this.lifetime.abort(new UpstreamUnavailableError('the upstream client is closing'))
    await Promise.all([this.manifests.settled(), this.blobs.settled()])
  }

  private async resolve (repository: string, reference: string, signal: AbortSignal): Promise<FetchedManifest> {
    const top = await this.fetchDocument(repository, reference, signal)
    const blobs = new Map<string, number>()
    // Child manifests of an index are fetched and stored now (they are small); blobs are only listed.
    await walkImage(top, async (descriptor, { parent }) => {
      if (parent.kind === 'index') return await this.fetchDocument(repository, descriptor.digest, signal, descriptor.size)
      blobs.set(descriptor.digest, descriptor.size)
      return undefined
    }, { maxDepth: MAX_INDEX_DEPTH, fail: message => new UpstreamManifestInvalidError(message), signal })
    return { mediaType: top.mediaType, digest: top.digest, size: top.size, blobs: [...blobs].map(([digest, size]) => ({ digest, size })) }
  }

  private async fetchDocument (repository: string, reference: string, signal: AbortSignal, size?: number): Promise<ManifestDocument & { digest: string, size: number }> {
    const what = `manifest ${repository}${reference.includes(':') ? '@' : ':'}${reference}`
    const response = await this.client.request({ repository, path: `manifests/${reference}`, accept: MANIFEST_ACCEPT, what, signal, headersTimeoutMs: this.init.headersTimeoutMs })
    const bytes = await readLimited(response, Math.min(size ?? MAX_UPSTREAM_MANIFEST_BYTES, MAX_UPSTREAM_MANIFEST_BYTES), signal)
    const hex = sha256Hex(bytes)
    const digest = `sha256:${hex}`
    // By digest, the bytes must be those; by tag, the registry's Docker-Content-Digest (when
    // it sends one) must agree with what we received: either way a damaged body is refused.
    const expected = reference.includes(':') ? reference : response.headers.get('docker-content-digest')
    if (expected !== null && expected !== digest) throw new UpstreamDigestMismatchError(expected, digest, what)
    if (size !== undefined && bytes.length !== size) throw new UpstreamManifestInvalidError(`${what} is ${bytes.length} bytes, its index says ${size}`)
    const parsed = parseUpstreamManifest(bytes, response.headers.get('content-type'), what)
    await ingestBlobBytes(this.components.store, bytes, { sha256: hex, signal })
    return { ...parsed, digest, size: bytes.length }
  }

  private async download (repository: string, hex: string, size: number | undefined, signal: AbortSignal, created: (file: GrowingFile) => void): Promise<void> {
    const store = this.components.store
    const held = await store.objectBySha256(hex)
    if (held !== undefined && await store.hasObject(held)) return
    const idle = new AbortController()
    const requestSignal = AbortSignal.any([signal, idle.signal])
    const what = `blob sha256:${hex} of ${repository}`
    const response = await this.client.request({ repository, path: `blobs/sha256:${hex}`, what, signal: requestSignal, headersTimeoutMs: this.init.headersTimeoutMs })
    const file = await downloadToFile(response, store, {
      sha256: hex,
      size,
      maxBytes: this.init.maxBlobBytes ?? DEFAULT_MAX_UPSTREAM_BLOB_BYTES,
      idleTimeoutMs: this.init.bodyIdleTimeoutMs ?? UPSTREAM_BODY_IDLE_TIMEOUT_MS,
      signal,
      idle,
      onBytes: this.init.onBytesReceived,
      what,
    }, created)
    try {
      // Not read again: the file hashed (BLAKE3, chunk table, sha256) what it wrote as it wrote
      // it. The staging file goes either way (its readers keep reading through the open handle).
      await ingestBlobFile(store, file.path, { sha256: hex, hashed: file.hashes(), signal })
    } finally {
      await file.writerFinished()
    }
  }
}

interface Started {
  promise: Promise<GrowingFile | undefined>
  resolve: (file: GrowingFile | undefined) => void
  reject: (err: unknown) => void
}

function startSignal (): Started {
  let resolve: Started['resolve'] = () => {}
  let reject: Started['reject'] = () => {}
  const promise = new Promise<GrowingFile | undefined>((res, rej) => { resolve = res; reject = rej })
  // Nobody may be waiting when the fetch fails.
  promise.catch(() => undefined)
  return { promise, resolve, reject }
}

function parseUpstreamUrl (text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new UpstreamConfigError(`upstream ${JSON.stringify(text)} is not a URL; write e.g. https://registry-1.docker.io or http://10.0.0.5:5000`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UpstreamConfigError(`upstream ${text} must be an http:// or https:// URL`)
  if (url.pathname !== '/' && url.pathname !== '') throw new UpstreamConfigError(`upstream ${text} must be a registry's root URL (no path); shoal adds /v2/`)
  return url
}

const SHA256 = /^sha256:([0-9a-f]{64})$/

function sha256Of (digest: string): string {
  const match = SHA256.exec(digest)
  if (match?.[1] === undefined) throw new UpstreamManifestInvalidError(`${JSON.stringify(digest.slice(0, 100))} is not a sha256 digest`)
  return match[1]
}
