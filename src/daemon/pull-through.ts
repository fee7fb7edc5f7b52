import {
  imageRefOf, namespaceHeader, parseDigest, RegistryError, type HttpLogger, type IncomingBlob, type RepositoryName, type Sha256Digest,
} from '../http/index.js'
import { isManifestMediaType, MAX_JSON_DOCUMENT_BYTES, parseManifestDocument, type ManifestDocument } from '../oci/index.js'
import { StoreError, type Store } from '../store/index.js'
import type { FetchedManifest } from '../upstream/index.js'
import type { ImageAssembler } from './image-assembler.js'
import type { UpstreamSource } from './upstream-source.js'
import { abortAfter, raceAbort } from '../wait/index.js'
import { RecentMap } from '../recent/index.js'

/**
 * A tag pulled through is re-resolved at the upstream when it was last resolved longer ago
 * than this, so a moved tag (`latest`) is followed; in between it is answered from the store.
 */
export const TAG_REVALIDATE_AFTER_MS = 60 * 1000

/**
 * How long a request waits for that re-resolution before it is answered with the tag the
 * store has: an edge whose uplink is down keeps serving what it holds, after this delay once
 * per TAG_REVALIDATE_AFTER_MS.
 */
export const TAG_REVALIDATE_TIMEOUT_MS = 3 * 1000

/** Tags whose last upstream resolution time is remembered (beyond that the oldest is forgotten and re-resolved). */
const MAX_REMEMBERED_TAGS = 10_000

/**
 * Blob sizes remembered from the manifests fetched (~100 bytes each): beyond that the oldest
 * is forgotten, and its blob is fetched with the upstream's Content-Length as its only size.
 */
const MAX_REMEMBERED_BLOB_SIZES = 100_000

export interface PullThroughInit {
  store: Store
  upstream: UpstreamSource
  /** Makes the bundle of an image once what clients asked of it is here. */
  assembler: ImageAssembler
  logger?: HttpLogger
  /** A tag of the upstream's registry held here is re-resolved there when last resolved this long ago. */
  tagRevalidateAfterMs?: number
  /** How long a request waits for that before it is answered with the tag held. */
  tagRevalidateTimeoutMs?: number
  /**
   * The daemon's: a blob handed out as it arrives is watched until it is stored for as long as
   * the daemon runs, not only while its first asker stays (an edge closes its stream at the
   * blob's last byte, before this node has made it an object). The asker's signal without it.
   */
  lifetime?: AbortSignal
}

/**
 * Pull-through from this node's own upstream (DESIGN.md "The local HTTP API"), for requests
 * whose registry is the upstream's (see `covers`). A manifest is answered as soon as it is
 * fetched, verified and stored; blobs are fetched when someone asks for them (a client here,
 * or another node of the fleet), never all of an index's platforms for completeness; once
 * what was asked is here the assembler makes the image a bundle with the ref
 * `<upstream host>/<repo>:<tag>`, which the daemon announces. Concurrent misses share one
 * fetch (the upstream client's single flights).
 */
export class PullThrough {
  /**
   * Each tag's last resolution at the upstream, by ref: when it was (or was tried and failed),
   * and what the tag gave when it last did, answered from here within the revalidation interval.
   */
  private readonly resolved = new RecentMap<string, { at: number, digest: Sha256Digest | undefined }>(MAX_REMEMBERED_TAGS)
  /**
   * The size of every blob the manifests fetched here name, by digest: containerd (and an edge
   * of the fleet) asks for a blob after reading the manifest that names it, so its fetch knows
   * the size when the upstream sends no Content-Length (chunked): the disk's room is checked
   * before a byte, and a body longer than the descriptor is cut there.
   */
  private readonly blobSizes = new RecentMap<string, number>(MAX_REMEMBERED_BLOB_SIZES)
  /**
   * The sizes the image manifests held in the store give, read into `blobSizes` once, the first
   * time a blob is asked that it lacks: after a restart the map is empty, and containerd
   * retrying a layer (or an edge asking for one) does not ask for the manifest again.
   */
  private heldSizes: Promise<void> | undefined

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
    // A tag asked again before its image is a bundle (a client resolves, then pulls) is not
    // asked of the upstream again within the interval, as a held tag would not be.
    const last = this.resolved.get(ref)
    const known = last?.digest
    if (last !== undefined && known !== undefined && Date.now() - last.at < this.revalidateAfterMs && await this.init.store.objectBySha256(known.hex) !== undefined) return known
    this.resolved.set(ref, { at: Date.now(), digest: known })
    const fetched = await this.fetchManifest(name, tag, signal)
    const resolution = this.resolved.get(ref)
    if (resolution !== undefined) resolution.digest = parseDigest(fetched.digest)
    // A tag that still names what the store's ref names needs nothing more (re-committing
    // would re-read every layer to rebuild chunk tables).
    const current = await this.init.store.getRef(ref)
    if (current?.manifestDigest !== fetched.digest) this.init.assembler.expect(ref, fetched.digest, fetched.mediaType)
    return parseDigest(fetched.digest)
  }

  /**
   * A tag the store holds, re-resolved at the upstream when it was last resolved over
   * `tagRevalidateAfterMs` ago, so a moved tag is followed. An upstream that fails or is slow
   * leaves the tag as it was last answered (an edge keeps serving what it has) and is not asked
   * again for that tag until the interval has passed once more.
   */
  async revalidateTag (name: RepositoryName, tag: string, held: Sha256Digest, signal: AbortSignal): Promise<Sha256Digest> {
    const ref = imageRefOf(name, tag)
    const last = this.resolved.get(ref)
    if (last !== undefined && Date.now() - last.at < this.revalidateAfterMs) return await this.lastAnswer(last.digest, held)
    const deadline = abortAfter(this.init.tagRevalidateTimeoutMs ?? TAG_REVALIDATE_TIMEOUT_MS, signal)
    try {
      return await this.manifestByTag(name, tag, deadline)
    } catch (err) {
      signal.throwIfAborted()
      this.init.logger?.info('could not re-resolve a tag at the upstream; serving what it gave when last resolved, or the one held', { ref, held: held.digest, given: last?.digest?.digest, err })
      // The request whose re-resolution failed, as the ones after it: answering the held ref sent
      // it back to the old image after a move the store's ref does not name yet.
      return await this.lastAnswer(last?.digest, held)
    }
  }

  /**
   * What the tag gave when last resolved: until its new image is whole here (made a bundle by
   * the assembler) the store's ref still names the one before, and answering that sent every
   * edge that asked within the interval back to the old image. The held ref when the manifest
   * given is not here (nothing to answer with).
   */
  private async lastAnswer (given: Sha256Digest | undefined, held: Sha256Digest): Promise<Sha256Digest> {
    return given !== undefined && await this.init.store.objectBySha256(given.hex) !== undefined ? given : held
  }

  /** A manifest by digest: stored, but not made a bundle (there is no tag to name it by). */
  async manifestByDigest (name: RepositoryName, digest: Sha256Digest, signal: AbortSignal): Promise<void> {
    await this.fetchManifest(name, digest.digest, signal)
  }

  /** A blob: fetched into the store, verified, or joined if an image fetch already has it coming. */
  async blob (name: RepositoryName, digest: Sha256Digest, signal: AbortSignal): Promise<void> {
    try {
      await this.init.upstream.fetchBlob(name.repository, digest.digest, { signal, size: await this.sizeOf(digest, signal) })
    } catch (err) {
      throw this.translate(err, signal, 'BLOB_UNKNOWN', name, `blob ${digest.digest}`)
    }
    this.init.assembler.check()
  }

  /**
   * A blob read as it arrives from the upstream (the same single fetch `blob` joins): resolves
   * once the upstream answered, so a client here or an edge of the fleet gets the first bytes
   * while the rest downloads. The image is checked for completeness once the fetch is done.
   */
  async openBlob (name: RepositoryName, digest: Sha256Digest, signal: AbortSignal): Promise<IncomingBlob> {
    let incoming: IncomingBlob
    const size = await this.sizeOf(digest, signal)
    try {
      incoming = await this.init.upstream.openBlob(name.repository, digest.digest, { signal, size })
    } catch (err) {
      throw this.translate(err, signal, 'BLOB_UNKNOWN', name, `blob ${digest.digest}`)
    }
    // Joins the fetch just started (no second download) to learn when the blob is an object.
    this.init.upstream.fetchBlob(name.repository, digest.digest, { signal: this.init.lifetime ?? signal, size }).then(() => { this.init.assembler.check() }, () => {})
    return incoming
  }

  /** The blob's size by a manifest fetched since the start, or else by one held in the store; undefined when none names it. */
  private async sizeOf (digest: Sha256Digest, signal: AbortSignal): Promise<number | undefined> {
    const known = this.blobSizes.get(digest.digest)
    if (known !== undefined) return known
    this.heldSizes ??= this.rememberHeldSizes()
    await raceAbort(this.heldSizes, signal)
    return this.blobSizes.get(digest.digest)
  }

  /**
   * Reads the sizes every image manifest held in the store gives its config and layers (a
   * blob's size is its content's: any manifest naming it says the same, or the fetch is refused
   * for the disagreement). Once per process: what is fetched later is remembered as it comes.
   * Rebuilt rather than persisted: the manifests are in the store already, and a restart is rare.
   */
  private async rememberHeldSizes (): Promise<void> {
    let documents = 0
    let sizes = 0
    try {
      for await (const { bytes } of this.init.store.heldDocuments(MAX_JSON_DOCUMENT_BYTES, { signal: this.init.lifetime })) {
        let document: ManifestDocument
        try {
          document = parseManifestDocument(bytes, { what: 'a held document', fail: message => new Error(message) })
        } catch {
          continue // a config, an index.json of a pushed layout, anything not a manifest
        }
        documents++
        if (document.kind !== 'manifest') continue
        for (const reference of document.references) {
          if (this.blobSizes.has(reference.digest)) continue
          this.blobSizes.set(reference.digest, reference.size)
          sizes++
        }
      }
      this.init.logger?.info('read the blob sizes the manifests held here give', { documents, sizes })
    } catch (err) {
      // Without them a blob is sized by its Content-Length alone, as before; not tried again.
      this.init.logger?.warn('could not read the blob sizes of the manifests held here', { documents, sizes, err })
    }
  }

  private get revalidateAfterMs (): number {
    return this.init.tagRevalidateAfterMs ?? TAG_REVALIDATE_AFTER_MS
  }

  private async fetchManifest (name: RepositoryName, reference: string, signal: AbortSignal): Promise<FetchedManifest> {
    let fetched: FetchedManifest
    try {
      fetched = await this.init.upstream.fetchManifest(name.repository, reference, { signal })
    } catch (err) {
      throw this.translate(err, signal, 'MANIFEST_UNKNOWN', name, `manifest ${reference}`)
    }
    for (const blob of fetched.blobs) this.blobSizes.set(blob.digest, blob.size)
    // An image (not an index: only one of its platforms is fetched) over the whole quota is
    // refused before any of its layers is: they could never be held together. Only the small
    // manifest was stored; nothing names it, so gc takes it.
    if (isManifestMediaType(fetched.mediaType)) {
      this.init.store.requireWithinQuota(fetched.size + fetched.blobs.reduce((sum, b) => sum + b.size, 0), `image ${name.host}/${name.repository}@${fetched.digest}`)
    }
    return fetched
  }

  /**
   * An upstream failure as the spec's error: the upstream's 404 is our 404 (fast, so
   * containerd tries its next host), anything else is UNAVAILABLE (503). A client that went
   * away gets its abort back (nothing is answered).
   */
  private translate (err: unknown, signal: AbortSignal, notFound: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN', name: RepositoryName, what: string): unknown {
    if (signal.aborted) return signal.reason
    if (err instanceof RegistryError) return err
    // This node's own disk, not the upstream: its error says so and what to do.
    if (err instanceof StoreError) return err
    const error = err as Error & { code?: unknown }
    const headers = namespaceHeader(name)
    if (error.code === 'UPSTREAM_NOT_FOUND') {
      return new RegistryError(notFound, `${what} of ${name.host}/${name.repository} is neither here nor at the upstream`, { detail: { name: name.path }, headers, cause: err })
    }
    this.init.logger?.warn('upstream fetch failed', { what, name: name.path, err })
    return new RegistryError('UNAVAILABLE', `${what} of ${name.host}/${name.repository} is not here and the upstream failed: ${error.message}`, { detail: { name: name.path, upstream: typeof error.code === 'string' ? error.code : undefined }, headers, cause: err })
  }
}
