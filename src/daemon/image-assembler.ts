import { isImageDocument, MAX_DESCRIPTOR_DEPTH, type ManifestDocument } from '../oci/index.js'
import {
  commitImage, heldBlob, MAX_MANIFEST_BYTES, parseManifestDocument, type HttpLogger,
} from '../http/index.js'
import { foldBlobBundles, type ImageBlob, type Store } from '../store/index.js'
import { RecentMap } from '../recent/index.js'

/** Images waiting for their blobs at once; past this the oldest is dropped (it is asked for again if a client wants it). */
const MAX_PENDING_IMAGES = 256
/**
 * How long after an image is made a bundle the one-blob bundles it covers are folded into it.
 * Not at once: a peer told a one-blob bundle's ID just before (a fleet answer) must still find
 * its description here, and a bundle a neighbour names and then lacks counts against that
 * neighbour (folded at once, an edge named a one-blob bundle by the gateway found it gone when
 * it asked for its description, and the blob 404ed). Chunks are asked by object, so a pull
 * under way is not affected by the fold itself.
 */
export const FOLD_BLOB_BUNDLES_AFTER_MS = 10 * 60 * 1000
/** An image whose blobs stop coming is forgotten after this long. */
const PENDING_IMAGE_TTL_MS = 30 * 60 * 1000

/** An image pull-through made into a bundle. */
export interface PulledThroughImage {
  ref: string
  bundleId: string
  digest: string
  seconds: number
}

interface PendingImage {
  ref: string
  digest: string
  mediaType: string
  since: number
  /** Child manifests of an index already in the last bundle made of it. */
  committedChildren: number
  /** The tag came from the fleet, not this node's upstream: its ref stays local (RefTarget.local). */
  local: boolean
}

export interface ImageAssemblerInit {
  store: Store
  logger?: HttpLogger
  /** A bundle was made (the daemon announces it). */
  onAssembled?: (image: PulledThroughImage) => void
  /** FOLD_BLOB_BUNDLES_AFTER_MS unless given (tests: 0, at once). */
  foldAfterMs?: number
}

/** An image bundle pulled from the fleet whose one-blob bundles fold into it once its objects are all here. */
interface PulledImage {
  since: number
}

/**
 * Turns an image fetched piece by piece, on demand (pull-through from an upstream, or from the
 * fleet), into a bundle with its ref once what a client asked for is all here. Nothing is fetched
 * for completeness: an index becomes a bundle of the platforms whose blobs are all held (its
 * other child manifests ride along, they are small), so a client pulling one platform of a
 * multi-platform image fetches that platform only. A platform that completes later makes a
 * newer bundle and the ref moves to it. The one-blob bundles made to move its blobs through
 * the fleet meanwhile are removed FOLD_BLOB_BUNDLES_AFTER_MS after the image's bundle covers
 * them (foldBlobBundles), whether the image was made a bundle here or its bundle was pulled
 * whole from the fleet (`pulled`).
 */
export class ImageAssembler {
  private readonly pending = new RecentMap<string, PendingImage>(MAX_PENDING_IMAGES)
  /** Image bundles pulled from the fleet, by bundle ID, until their objects are all here. */
  private readonly pulledImages = new RecentMap<string, PulledImage>(MAX_PENDING_IMAGES)
  private running: Promise<void> = Promise.resolve()
  private queued = false
  private readonly lifetime = new AbortController()
  private readonly folds = new Set<NodeJS.Timeout>()

  constructor (private readonly init: ImageAssemblerInit) {}

  /**
   * Expects the image a tag named (its manifest is stored); checks at once whether it is whole.
   * `from: 'fleet'` when a trusted peer resolved the tag: the ref made is local, never published
   * as this node's, and a trusted publisher's record wins over it.
   */
  expect (ref: string, digest: string, mediaType: string, { from }: { from: 'upstream' | 'fleet' } = { from: 'upstream' }): void {
    const current = this.pending.get(ref)
    if (current?.digest === digest) return
    this.pending.set(ref, { ref, digest, mediaType, since: Date.now(), committedChildren: 0, local: from === 'fleet' })
    this.check()
  }

  /**
   * The image a tag names comes as a bundle pulled from the fleet (a record's, or the one a
   * trusted peer's answer named), not made here. `ref`'s pending entry for the same manifest
   * is dropped: an earlier answer that named no bundle left it, and it would make a second
   * bundle of the image from the same objects once the pull brought them. Without `ref` (a
   * record's bundle: the record's ref is not the assembler's to make) only the fold is set.
   * Either way the one-blob bundles that moved its blobs before are folded into it once its
   * objects are all here, as for an image made here (the same delay).
   */
  pulled (bundleId: string, image?: { ref: string, digest: string }): void {
    if (image !== undefined && this.pending.get(image.ref)?.digest === image.digest) this.pending.delete(image.ref)
    if (!this.pulledImages.has(bundleId)) this.pulledImages.set(bundleId, { since: Date.now() })
    this.check()
  }

  /** Something arrived: looks at the pending images soon (calls in a burst make one pass). */
  check (): void {
    if (this.queued || (this.pending.size === 0 && this.pulledImages.size === 0) || this.lifetime.signal.aborted) return
    this.queued = true
    this.running = this.running.then(async () => {
      this.queued = false
      await this.pass()
    })
  }

  async close (): Promise<void> {
    this.lifetime.abort(new Error('the image assembler is closing'))
    for (const timer of this.folds) clearTimeout(timer)
    this.folds.clear()
    await this.running
  }

  private async pass (): Promise<void> {
    const now = Date.now()
    for (const image of [...this.pending.values()]) {
      if (this.lifetime.signal.aborted) return
      if (now - image.since > PENDING_IMAGE_TTL_MS) {
        this.pending.delete(image.ref)
        continue
      }
      try {
        await this.tryCommit(image)
      } catch (err) {
        this.pending.delete(image.ref)
        this.init.logger?.warn('an image fetched on demand could not be made a bundle', { ref: image.ref, digest: image.digest, err })
      }
    }
    for (const [bundleId, pulled] of [...this.pulledImages.entries()]) {
      if (this.lifetime.signal.aborted) return
      // A pull that stopped short (its holders gone, the disk full): its one-blob bundles stay.
      if (now - pulled.since > PENDING_IMAGE_TTL_MS) {
        this.pulledImages.delete(bundleId)
        continue
      }
      try {
        const whole = await wholeHere(this.init.store, bundleId)
        if (whole === false) continue
        this.pulledImages.delete(bundleId)
        if (whole) this.scheduleFold(bundleId)
      } catch (err) {
        this.pulledImages.delete(bundleId)
        this.init.logger?.warn('an image bundle pulled from the fleet could not be checked whole', { bundleId, err })
      }
    }
  }

  private async tryCommit (image: PendingImage): Promise<void> {
    const { store } = this.init
    const bytes = await store.readDocument(image.digest.slice('sha256:'.length), MAX_MANIFEST_BYTES)
    if (bytes === undefined) return
    const document = parseManifestDocument(bytes, image.mediaType)
    const parts = await heldParts(store, document)
    if (parts === undefined) return
    if (document.kind === 'index' && parts.children <= image.committedChildren) return
    const signal = this.lifetime.signal
    const result = await commitImage(store, { ref: image.ref, bytes, hex: image.digest.slice('sha256:'.length), document, blobs: parts.blobs, local: image.local, signal })
    const seconds = (Date.now() - image.since) / 1000
    // The one-blob bundles that moved this image's blobs before it was whole are covered now.
    this.scheduleFold(result.bundleId)
    if (document.kind === 'index' && parts.children < parts.of) {
      image.committedChildren = parts.children
    } else {
      this.pending.delete(image.ref)
    }
    this.init.logger?.info('image made a bundle', {
      ref: image.ref, digest: image.digest, bundleId: result.bundleId, platforms: document.kind === 'index' ? `${parts.children}/${parts.of}` : undefined, seconds,
      // Why a ref did not move: the fleet's record for it is kept (RefTarget.local).
      ...(image.local ? { refSet: result.revision !== undefined ? 'local' : 'kept the trusted record' } : {}),
    })
    this.init.onAssembled?.({ ref: image.ref, bundleId: result.bundleId, digest: image.digest, seconds })
  }

  private scheduleFold (bundleId: string): void {
    const fold = async (): Promise<void> => {
      if (this.lifetime.signal.aborted) return
      try {
        const folded = await foldBlobBundles(this.init.store, bundleId)
        if (folded.length > 0) this.init.logger?.info('one-blob bundles folded into their image\'s bundle', { bundleId, folded: folded.length })
      } catch (err) {
        this.init.logger?.warn('folding one-blob bundles into an image\'s bundle failed', { bundleId, err })
      }
    }
    const afterMs = this.init.foldAfterMs ?? FOLD_BLOB_BUNDLES_AFTER_MS
    if (afterMs <= 0) {
      this.running = this.running.then(fold)
      return
    }
    const timer = setTimeout(() => {
      this.folds.delete(timer)
      this.running = this.running.then(fold)
    }, afterMs)
    timer.unref()
    this.folds.add(timer)
  }
}

/** Whether every object of `bundleId` is here; undefined when the bundle is not (removed meanwhile). */
async function wholeHere (store: Store, bundleId: string): Promise<boolean | undefined> {
  const bundle = await store.loadBundle(bundleId)
  if (bundle === undefined) return undefined
  for (const object of bundle.objectSizes.keys()) if (!await store.hasObject(object)) return false
  return true
}

/**
 * What of an image is here whole: a manifest counts only with all its blobs; an index with at
 * least one child manifest whose blobs are all here (children missing blobs are left out, their
 * manifests kept when held). Undefined when nothing is whole yet. It walks by hand, not with
 * oci's walkImage: its question is answered from the leaves up (a child counts once all under
 * it is here), and walkImage visits parents first and carries nothing back up.
 */
async function heldParts (store: Store, document: ManifestDocument, depth = 0): Promise<{ blobs: ImageBlob[], children: number, of: number } | undefined> {
  if (document.kind === 'manifest') {
    const blobs: ImageBlob[] = []
    for (const reference of document.references) {
      const blob = await heldBlob(store, reference)
      if (blob === undefined) return undefined
      blobs.push(blob)
    }
    return { blobs, children: 1, of: 1 }
  }
  if (depth >= MAX_DESCRIPTOR_DEPTH) return undefined
  const blobs: ImageBlob[] = []
  let children = 0
  for (const reference of document.references) {
    if (!isImageDocument(reference)) continue
    const blob = await heldBlob(store, reference)
    if (blob === undefined) continue
    blobs.push(blob)
    const bytes = await store.readDocument(reference.hex, MAX_MANIFEST_BYTES)
    if (bytes === undefined) continue
    const child = await heldParts(store, parseManifestDocument(bytes, reference.mediaType), depth + 1)
    if (child === undefined) continue
    blobs.push(...child.blobs)
    children++
  }
  return children === 0 ? undefined : { blobs, children, of: document.references.length }
}

