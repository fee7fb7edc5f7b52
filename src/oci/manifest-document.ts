import { MAX_JSON_DOCUMENT_BYTES } from './constants.js'
import { isRecord, parseDescriptor, parseDescriptorList, type Descriptor } from './descriptor.js'
import { OciUnsupportedDigestError } from './errors.js'
import {
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, isIndexMediaType, isManifestMediaType,
} from './media-types.js'

/** A descriptor an index or manifest names, with the hex of its (checked) sha256 digest beside it. */
export interface ImageReference extends Descriptor {
  hex: string
}

/** An image index or image manifest, read into the descriptors it names. */
export interface ManifestDocument {
  mediaType: string
  /** An index lists manifests; a manifest names its config and layers. */
  kind: 'index' | 'manifest'
  /** An index: its child manifests. A manifest: its config, then its layers. */
  references: ImageReference[]
}

/** The manifests a registry stores and serves: OCI and Docker schema 2, image or index. */
export const STORABLE_MANIFEST_TYPES: ReadonlySet<string> = new Set([OCI_IMAGE_MANIFEST, OCI_IMAGE_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST])

export interface ParseManifestOptions {
  /** Used in messages: `manifest app:1.0 from the upstream`, `child manifest sha256:…`. */
  what: string
  /** Builds the caller's typed error (a registry's MANIFEST_INVALID, the upstream's, the layout's). */
  fail: (message: string, options?: ErrorOptions) => Error
  /** The Content-Type the document came with (a push's request, an upstream's response); used when the document names no mediaType. */
  contentType?: string | null
  /** distribution-spec "Pushing Manifests": a Content-Type and a mediaType that disagree are refused (a push); an upstream's are not checked. */
  agreeWithContentType?: boolean
  maxBytes?: number
}

/**
 * Reads a manifest or index: JSON, schemaVersion 2, a media type a registry stores (the
 * document's own, else the Content-Type, else its shape), and well-formed sha256
 * descriptors. Schema 1 and other digest algorithms are refused: containerd and the store
 * speak neither. Every refusal is `fail(…)`, so each caller keeps its own error code.
 */
export function parseManifestDocument (bytes: Buffer, options: ParseManifestOptions): ManifestDocument {
  const { what, fail, maxBytes = MAX_JSON_DOCUMENT_BYTES } = options
  if (bytes.length > maxBytes) throw fail(`${what} is ${bytes.length} bytes, over the ${maxBytes}-byte limit for manifests`)
  const value = parseJsonObject(bytes)
  if (value === undefined) throw fail(`${what} is not a JSON object`)
  if (value.schemaVersion !== 2) throw fail(`${what} has schemaVersion ${JSON.stringify(value.schemaVersion)}, which is not supported; use schema 2 (OCI or Docker v2s2)`)
  const declared = typeof value.mediaType === 'string' && value.mediaType !== '' ? value.mediaType : undefined
  const header = options.contentType?.split(';')[0]?.trim()
  const headerType = header !== undefined && STORABLE_MANIFEST_TYPES.has(header) ? header : undefined
  if (options.agreeWithContentType === true && declared !== undefined && headerType !== undefined && declared !== headerType) {
    throw fail(`Content-Type ${headerType} disagrees with ${what}'s mediaType ${declared}`)
  }
  const mediaType = declared ?? headerType ?? mediaTypeByShape(value)
  if (mediaType === undefined || !STORABLE_MANIFEST_TYPES.has(mediaType)) {
    throw fail(`${what} has media type ${JSON.stringify(mediaType ?? header)}, not an OCI or Docker v2 manifest or index`)
  }
  try {
    return manifestDocumentOf(value, mediaType, what, fail)
  } catch (err) {
    // A digest of another algorithm is a bad document here, in the caller's terms.
    if (err instanceof OciUnsupportedDigestError) throw fail(err.message, { cause: err })
    throw err
  }
}

/**
 * The descriptors of a parsed index (`manifests`) or manifest (`config`, then `layers`) whose
 * media type is known, each refusal `fail(…)` naming where in `what` it is (`… layers[2]`).
 * A digest of another algorithm than sha256 throws OciUnsupportedDigestError.
 */
export function manifestDocumentOf (value: Record<string, unknown>, mediaType: string, what: string, fail: (message: string) => Error): ManifestDocument {
  if (isIndexMediaType(mediaType)) return { mediaType, kind: 'index', references: parseDescriptorList(value, 'manifests', what, fail).map(withHex) }
  if (!isManifestMediaType(mediaType)) throw fail(`${what} (${mediaType}) is not a manifest`)
  const config = parseDescriptor(value.config, `${what} config`, fail)
  return { mediaType, kind: 'manifest', references: [config, ...parseDescriptorList(value, 'layers', what, fail)].map(withHex) }
}

/** parseDescriptor checked the digest (sha256:<64 hex>); its hex is what the store indexes by. */
export function withHex (descriptor: Descriptor): ImageReference {
  return { ...descriptor, hex: descriptor.digest.slice('sha256:'.length) }
}

/**
 * The media type a stored document is served with. image-spec lets an OCI manifest or
 * index omit `mediaType`; then its shape says which it is. Undefined for anything that is
 * not a manifest (a config, a layer): those are blobs, not manifests.
 */
export function servedMediaType (bytes: Buffer): string | undefined {
  const value = parseJsonObject(bytes)
  if (value === undefined || value.schemaVersion !== 2) return undefined
  if (typeof value.mediaType === 'string' && value.mediaType !== '') return value.mediaType
  return mediaTypeByShape(value)
}

/** Whether a descriptor names a document an image walk goes into (an index or a manifest), not a config or layer. */
export function isImageDocument (reference: Pick<Descriptor, 'mediaType'>): boolean {
  return isIndexMediaType(reference.mediaType) || isManifestMediaType(reference.mediaType)
}

function mediaTypeByShape (value: Record<string, unknown>): string | undefined {
  if (Array.isArray(value.manifests)) return OCI_IMAGE_INDEX
  if (Array.isArray(value.layers) && isRecord(value.config)) return OCI_IMAGE_MANIFEST
  return undefined
}

function parseJsonObject (bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'))
    return isRecord(value) ? value : undefined
  } catch {
    return undefined
  }
}
