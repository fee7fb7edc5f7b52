import type { Platform } from './descriptor.js'
import { readLayoutIndex } from './layout.js'
import { ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME } from './media-types.js'

/** One entry of index.json's `manifests`: an image (manifest) or an image set (index). */
export interface ImageRef {
  digest: string
  mediaType: string
  size: number
  /** `org.opencontainers.image.ref.name`, e.g. `1.0` (skopeo, umoci) or a full name (some tools). */
  refName?: string
  /** `io.containerd.image.name`, e.g. `registry.example.com/app:1.0` (ctr image export). */
  imageName?: string
  platform?: Platform
}

/**
 * The images index.json names, in file order. Entries without either annotation
 * are listed too (skopeo writes one when copying to `oci:DIR` without a tag).
 */
export async function readRefs (dir: string, options: { signal?: AbortSignal } = {}): Promise<ImageRef[]> {
  const { manifests } = await readLayoutIndex(dir, options)
  return manifests.map(descriptor => {
    const ref: ImageRef = { digest: descriptor.digest, mediaType: descriptor.mediaType, size: descriptor.size }
    const refName = descriptor.annotations?.[ANNOTATION_REF_NAME]
    const imageName = descriptor.annotations?.[ANNOTATION_CONTAINERD_IMAGE_NAME]
    if (refName !== undefined) ref.refName = refName
    if (imageName !== undefined) ref.imageName = imageName
    if (descriptor.platform !== undefined) ref.platform = descriptor.platform
    return ref
  })
}
