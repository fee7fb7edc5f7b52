import { sha256HexOf } from './digest.js'

/** image-spec descriptor.md, the fields shoal reads. */
export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
  platform?: Platform
}

/** image-spec image-index.md `platform`. */
export interface Platform {
  architecture: string
  os: string
  variant?: string
  'os.version'?: string
  'os.features'?: string[]
}

type Fail = (message: string) => Error

export function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Checks one descriptor's shape. The digest is checked too (sha256 only), so
 * nothing downstream ever builds a path from an unchecked string.
 */
export function parseDescriptor (value: unknown, where: string, fail: Fail): Descriptor {
  if (!isRecord(value)) throw fail(`${where} is not a descriptor object`)
  const { mediaType, digest, size, annotations, platform } = value
  if (typeof mediaType !== 'string' || mediaType === '') throw fail(`${where} has no mediaType`)
  if (typeof digest !== 'string') throw fail(`${where} has no digest`)
  sha256HexOf(digest, where)
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw fail(`${where} has no valid size (found ${JSON.stringify(size)})`)
  const descriptor: Descriptor = { mediaType, digest, size }
  if (annotations !== undefined) descriptor.annotations = parseAnnotations(annotations, where, fail)
  if (platform !== undefined) descriptor.platform = parsePlatform(platform, where, fail)
  return descriptor
}

/** The descriptors in a document's array field (`manifests`, `layers`). */
export function parseDescriptorList (document: Record<string, unknown>, field: string, where: string, fail: Fail): Descriptor[] {
  const list = document[field]
  if (!Array.isArray(list)) throw fail(`${where} has no "${field}" array`)
  return list.map((item: unknown, i) => parseDescriptor(item, `${where} ${field}[${i}]`, fail))
}

function parseAnnotations (value: unknown, where: string, fail: Fail): Record<string, string> {
  if (!isRecord(value)) throw fail(`${where} annotations is not an object`)
  const annotations: Record<string, string> = {}
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw fail(`${where} annotation "${key}" is not a string`)
    annotations[key] = item
  }
  return annotations
}

function parsePlatform (value: unknown, where: string, fail: Fail): Platform {
  if (!isRecord(value)) throw fail(`${where} platform is not an object`)
  const { architecture, os, variant } = value
  if (typeof architecture !== 'string' || typeof os !== 'string') throw fail(`${where} platform needs "architecture" and "os" strings`)
  const platform: Platform = { architecture, os }
  if (typeof variant === 'string') platform.variant = variant
  const osVersion = value['os.version']
  if (typeof osVersion === 'string') platform['os.version'] = osVersion
  const osFeatures = value['os.features']
  if (Array.isArray(osFeatures) && osFeatures.every((f): f is string => typeof f === 'string')) platform['os.features'] = osFeatures
  return platform
}
