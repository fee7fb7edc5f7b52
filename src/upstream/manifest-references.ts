import {
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, isIndexMediaType, isManifestMediaType,
} from '../oci/index.js'
import { UpstreamManifestInvalidError } from './errors.js'

/** What we ask an upstream for when resolving a manifest: containerd's list, without `*∕*`. */
export const MANIFEST_ACCEPT = [OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ')

const STORABLE = new Set([OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])

export interface UpstreamDescriptor {
  mediaType: string
  /** `sha256:<hex>` */
  digest: string
  hex: string
  size: number
}

export interface ParsedManifest {
  mediaType: string
  kind: 'index' | 'manifest'
  /** An index: its child manifests. A manifest: its config, then its layers. */
  references: UpstreamDescriptor[]
}

const SHA256 = /^sha256:([0-9a-f]{64})$/

/**
 * Reads a manifest or index fetched from the upstream (its bytes already checked against
 * their digest): schema 2 JSON, a media type we store (the document's own, else the
 * response's Content-Type, else its shape), and sha256 descriptors with sizes. Schema 1 and
 * other digest algorithms are refused: containerd and the store speak neither.
 */
export function parseUpstreamManifest (bytes: Buffer, contentType: string | null, what: string): ParsedManifest {
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new UpstreamManifestInvalidError(`${what} from the upstream is not JSON`)
  }
  if (!isRecord(value) || value.schemaVersion !== 2) throw new UpstreamManifestInvalidError(`${what} from the upstream is not a schema 2 manifest`)
  const header = contentType?.split(';')[0]?.trim()
  const shape = Array.isArray(value.manifests) ? OCI_IMAGE_INDEX : Array.isArray(value.layers) ? OCI_IMAGE_MANIFEST : undefined
  const mediaType = typeof value.mediaType === 'string' && value.mediaType !== '' ? value.mediaType : header !== undefined && STORABLE.has(header) ? header : shape
  if (mediaType === undefined || !STORABLE.has(mediaType)) throw new UpstreamManifestInvalidError(`${what} from the upstream has media type ${JSON.stringify(mediaType ?? header)}, not an OCI or Docker v2 manifest or index`)
  if (isIndexMediaType(mediaType)) return { mediaType, kind: 'index', references: list(value.manifests, `${what} manifests`) }
  if (!isManifestMediaType(mediaType)) throw new UpstreamManifestInvalidError(`${what} is not a manifest`)
  return { mediaType, kind: 'manifest', references: [descriptor(value.config, `${what} config`), ...list(value.layers, `${what} layers`)] }
}

function list (value: unknown, where: string): UpstreamDescriptor[] {
  if (!Array.isArray(value)) throw new UpstreamManifestInvalidError(`${where} is not an array`)
  return value.map((item: unknown, i) => descriptor(item, `${where}[${i}]`))
}

function descriptor (value: unknown, where: string): UpstreamDescriptor {
  if (!isRecord(value)) throw new UpstreamManifestInvalidError(`${where} is not a descriptor`)
  const { mediaType, digest, size } = value
  const match = typeof digest === 'string' ? SHA256.exec(digest) : null
  if (typeof mediaType !== 'string' || mediaType === '') throw new UpstreamManifestInvalidError(`${where} has no mediaType`)
  if (match?.[1] === undefined || typeof digest !== 'string') throw new UpstreamManifestInvalidError(`${where} has no sha256 digest`)
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new UpstreamManifestInvalidError(`${where} has no valid size`)
  return { mediaType, digest, hex: match[1], size }
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
