import {
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, isIndexMediaType, isManifestMediaType,
} from '../oci/index.js'
import { RegistryError } from './errors.js'
import { parseDigest, type Sha256Digest } from './names.js'

/** A descriptor a manifest or index names, with its digest checked. */
export interface Reference {
  mediaType: string
  digest: Sha256Digest
  size: number
}

export interface ManifestDocument {
  mediaType: string
  /** An index lists manifests; a manifest names its config and layers. */
  kind: 'index' | 'manifest'
  references: Reference[]
}

const PUSHABLE = new Set([OCI_IMAGE_MANIFEST, OCI_IMAGE_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST])

/**
 * The media type a stored document is served with. image-spec lets an OCI manifest or
 * index omit `mediaType`; then its shape says which it is. Undefined for anything that is
 * not a manifest (a config, a layer): those are blobs, not manifests.
 */
export function servedMediaType (bytes: Buffer): string | undefined {
  const value = parseJsonObject(bytes)
  if (value === undefined || value.schemaVersion !== 2) return undefined
  if (typeof value.mediaType === 'string' && value.mediaType !== '') return value.mediaType
  if (Array.isArray(value.manifests)) return OCI_IMAGE_INDEX
  if (Array.isArray(value.layers) && isRecord(value.config)) return OCI_IMAGE_MANIFEST
  return undefined
}

/**
 * Checks a pushed manifest: JSON, schemaVersion 2, a media type we store (OCI or Docker
 * schema 2, image or index), agreeing with the request's Content-Type when both are given
 * (distribution-spec "Pushing Manifests"), and well-formed sha256 descriptors.
 */
export function parseManifestDocument (bytes: Buffer, contentType: string | undefined): ManifestDocument {
  const value = parseJsonObject(bytes)
  if (value === undefined) throw invalid('the manifest is not a JSON object')
  if (value.schemaVersion !== 2) throw invalid(`schemaVersion ${JSON.stringify(value.schemaVersion)} is not supported; push schema 2 (OCI or Docker v2s2)`)
  const declared = typeof value.mediaType === 'string' ? value.mediaType : undefined
  const header = contentType?.split(';')[0]?.trim()
  const headerType = header !== undefined && PUSHABLE.has(header) ? header : undefined
  if (declared !== undefined && headerType !== undefined && declared !== headerType) {
    throw invalid(`Content-Type ${headerType} disagrees with the manifest's mediaType ${declared}`)
  }
  const mediaType = declared ?? headerType ?? servedMediaType(bytes)
  if (mediaType === undefined || !PUSHABLE.has(mediaType)) throw invalid(`media type ${JSON.stringify(mediaType ?? header)} is not one this registry stores (OCI or Docker v2 manifest or index)`)
  if (isIndexMediaType(mediaType)) return { mediaType, kind: 'index', references: descriptorList(value.manifests, 'manifests') }
  if (!isManifestMediaType(mediaType)) throw invalid(`media type ${mediaType} is not a manifest`)
  return { mediaType, kind: 'manifest', references: [descriptor(value.config, 'config'), ...descriptorList(value.layers, 'layers')] }
}

function descriptorList (value: unknown, field: string): Reference[] {
  if (!Array.isArray(value)) throw invalid(`"${field}" is not an array`)
  return value.map((item: unknown, i) => descriptor(item, `${field}[${i}]`))
}

function descriptor (value: unknown, where: string): Reference {
  if (!isRecord(value)) throw invalid(`${where} is not a descriptor`)
  const { mediaType, digest, size } = value
  if (typeof mediaType !== 'string' || mediaType === '') throw invalid(`${where} has no mediaType`)
  if (typeof digest !== 'string') throw invalid(`${where} has no digest`)
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where} has no valid size`)
  let parsed: Sha256Digest
  try {
    parsed = parseDigest(digest)
  } catch (err) {
    throw invalid(`${where}: ${(err as Error).message}`)
  }
  return { mediaType, digest: parsed, size }
}

function parseJsonObject (bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'))
    return isRecord(value) ? value : undefined
  } catch {
    return undefined
  }
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function invalid (message: string): RegistryError {
  return new RegistryError('MANIFEST_INVALID', message)
}
