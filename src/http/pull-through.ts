import { open } from 'node:fs/promises'
import { sha256Hex } from '../hash/index.js'
import type { Store } from '../store/index.js'
import { MAX_MANIFEST_BYTES, MAX_REMEMBERED_TAGS, PULL_THROUGH_BLOB_CONCURRENCY } from './constants.js'
import { RegistryError } from './errors.js'
import { commitImage, imageBlobs } from './image-commit.js'
import { parseManifestDocument } from './manifest-document.js'
import { imageRefOf, parseDigest, type RepositoryName, type Sha256Digest } from './names.js'
import { namespaceHeader } from './respond.js'
import type { HttpLogger, PulledThroughImage, UpstreamManifest, UpstreamSource } from './types.js'

export interface PullThroughInit {
  store: Store
  upstream: UpstreamSource
  logger: HttpLogger | undefined
  onPulledThrough: ((image: PulledThroughImage) => void) | undefined
  tagRevalidateAfterMs: number
  tagRevalidateTimeoutMs: number
}

/**
 * Pull-through (DESIGN.md "The local HTTP API"): what a registry request misses locally is
 * fetched from the upstream, when the request's registry is the upstream's (see `covers`).
 * A manifest is answered as soon as it is fetched, verified and stored; the image's blobs
 * follow in the background (a blob a client asks for meanwhile joins its fetch, or starts
 * it), and once all are here the image becomes a bundle with the ref
 * `<upstream host>/<repo>:<tag>`, which the daemon announces to the swarm. Concurrent misses
 * for the same ref share one fetch (the upstream client's single flights, and `completing`).
 */
export class PullThrough {
  private readonly completing = new Map<string, Promise<void>>()
  /** When each tag was last resolved at the upstream (or tried and failed), by ref. */
  private readonly resolvedAt = new Map<string, number>()
  private readonly lifetime = new AbortController()

  constructor (private readonly init: PullThroughInit) {}

  /**
   * Whether a request for this name may go upstream: when the request names the upstream's
   * registry, by containerd's `?ns=` or by the first component of the path (a path without
   * one is filed under the default registry, which the daemon sets to the upstream's).
   */
  covers (name: RepositoryName): boolean {
    return this.init.upstream.serves(name.host)
  }

  /** Resolves a tag at the upstream; the manifest is stored when this returns, its image completing behind. */
  async manifestByTag (name: RepositoryName, tag: string, signal: AbortSignal): Promise<Sha256Digest> {
    const ref = imageRefOf(name, tag)
    this.remember(ref)
    const fetched = await this.fetchManifest(name, tag, signal)
    // A tag that still names what the store's ref names needs nothing more (re-committing
    // would re-read every layer to rebuild chunk tables).
    const current = await this.init.store.getRef(ref)
    if (current?.manifestDigest !== fetched.digest && !this.completing.has(ref)) {
      const done = this.complete(ref, name, fetched).finally(() => { this.completing.delete(ref) })
      this.completing.set(ref, done)
    }
    return parseDigest(fetched.digest)
  }

  /**
   * A tag the store holds, re-resolved at the upstream when it was last resolved over
   * `tagRevalidateAfterMs` ago, so a moved tag is followed. An upstream that fails or is slow
   * leaves the held tag in place (an edge keeps serving what it has) and is not asked again
   * for that tag until the interval has passed once more.
   */
  async revalidateTag (name: RepositoryName, tag: string, held: Sha256Digest, signal: AbortSignal): Promise<Sha256Digest> {
    const ref = imageRefOf(name, tag)
    const last = this.resolvedAt.get(ref)
    if (last !== undefined && Date.now() - last < this.init.tagRevalidateAfterMs) return held
    const deadline = AbortSignal.timeout(this.init.tagRevalidateTimeoutMs)
    try {
      return await this.manifestByTag(name, tag, AbortSignal.any([signal, deadline]))
    } catch (err) {
      signal.throwIfAborted()
      this.init.logger?.info('could not re-resolve a tag at the upstream; serving the one held', { ref, held: held.digest, err })
      return held
    }
  }

  /** A manifest by digest: stored, but not made a bundle (there is no tag to name it by). */
  async manifestByDigest (name: RepositoryName, digest: Sha256Digest, signal: AbortSignal): Promise<void> {
    await this.fetchManifest(name, digest.digest, signal)
  }

  /** A blob: fetched into the store, verified, or joined if an image fetch already has it coming. */
  async blob (name: RepositoryName, digest: Sha256Digest, signal: AbortSignal): Promise<void> {
    try {
      await this.init.upstream.fetchBlob(name.repository, digest.digest, { signal })
    } catch (err) {
      throw this.translate(err, signal, 'BLOB_UNKNOWN', name, `blob ${digest.digest}`)
    }
  }

  /** Stops the background completions and waits for them to end (before the store closes). */
  async close (): Promise<void> {
    this.lifetime.abort(new RegistryError('UNAVAILABLE', 'the API is closing'))
    await Promise.allSettled([...this.completing.values()])
  }

  private remember (ref: string): void {
    this.resolvedAt.delete(ref)
    this.resolvedAt.set(ref, Date.now())
    if (this.resolvedAt.size > MAX_REMEMBERED_TAGS) this.resolvedAt.delete(this.resolvedAt.keys().next().value as string)
  }

  private async fetchManifest (name: RepositoryName, reference: string, signal: AbortSignal): Promise<UpstreamManifest> {
    try {
      return await this.init.upstream.fetchManifest(name.repository, reference, { signal })
    } catch (err) {
      throw this.translate(err, signal, 'MANIFEST_UNKNOWN', name, `manifest ${reference}`)
    }
  }

  /** Fetches every blob, then makes the bundle. Runs under the API's lifetime, not a request's. */
  private async complete (ref: string, name: RepositoryName, manifest: UpstreamManifest): Promise<void> {
    const started = Date.now()
    const signal = this.lifetime.signal
    try {
      const queue = [...manifest.blobs]
      const worker = async (): Promise<void> => {
        for (let blob = queue.shift(); blob !== undefined; blob = queue.shift()) {
          await this.init.upstream.fetchBlob(name.repository, blob.digest, { signal, size: blob.size })
        }
      }
      await Promise.all(Array.from({ length: PULL_THROUGH_BLOB_CONCURRENCY }, worker))
      const digest = parseDigest(manifest.digest)
      const bytes = await this.readManifest(digest)
      const document = parseManifestDocument(bytes, manifest.mediaType)
      const blobs = await imageBlobs(this.init.store, document)
      const result = await commitImage(this.init.store, { ref, bytes, hex: digest.hex, document, blobs, signal })
      const seconds = (Date.now() - started) / 1000
      this.init.logger?.info('image pulled through', { ref, digest: manifest.digest, bundleId: result.bundleId, seconds })
      this.init.onPulledThrough?.({ ref, bundleId: result.bundleId, digest: manifest.digest, seconds })
    } catch (err) {
      if (!signal.aborted) this.init.logger?.warn('pull-through of an image failed; its blobs are fetched again on the next request', { ref, err })
    }
  }

  private async readManifest (digest: Sha256Digest): Promise<Buffer> {
    const object = await this.init.store.objectBySha256(digest.hex)
    if (object === undefined) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest.digest} went missing from the store`)
    const file = await open(this.init.store.objectPath(object), 'r')
    try {
      if ((await file.stat()).size > MAX_MANIFEST_BYTES) throw new RegistryError('MANIFEST_INVALID', `manifest ${digest.digest} is over ${MAX_MANIFEST_BYTES} bytes`)
      const bytes = await file.readFile()
      if (sha256Hex(bytes) !== digest.hex) throw new RegistryError('MANIFEST_INVALID', `manifest ${digest.digest} is damaged in this store`)
      return bytes
    } finally {
      await file.close()
    }
  }

  /**
   * An upstream failure as the spec's error: the upstream's 404 is our 404 (fast, so
   * containerd tries its next host), anything else is UNAVAILABLE (503). A client that went
   * away gets its abort back (nothing is answered).
   */
  private translate (err: unknown, signal: AbortSignal, notFound: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN', name: RepositoryName, what: string): unknown {
    if (signal.aborted) return signal.reason
    if (err instanceof RegistryError) return err
    const error = err as Error & { code?: unknown }
    const headers = namespaceHeader(name)
    if (error.code === 'UPSTREAM_NOT_FOUND') {
      return new RegistryError(notFound, `${what} of ${name.host}/${name.repository} is neither here nor at the upstream`, { detail: { name: name.path }, headers, cause: err })
    }
    this.init.logger?.warn('upstream fetch failed', { what, name: name.path, err })
    return new RegistryError('UNAVAILABLE', `${what} of ${name.host}/${name.repository} is not here and the upstream failed: ${error.message}`, { detail: { name: name.path, upstream: typeof error.code === 'string' ? error.code : undefined }, headers, cause: err })
  }
}
