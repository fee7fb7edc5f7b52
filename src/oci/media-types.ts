// Media types shoal recognises in OCI layouts and archives. Sources: OCI image-spec
// v1.1 (media-types.md) and Docker's "Image Manifest V2, Schema 2" document.

export const OCI_LAYOUT_FILE_NAME = 'oci-layout'
export const OCI_INDEX_FILE_NAME = 'index.json'
/** image-spec image-layout.md: the only layout version there is. */
export const OCI_LAYOUT_VERSION = '1.0.0'

export const OCI_IMAGE_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_IMAGE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json'
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar'
export const OCI_LAYER_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
export const OCI_LAYER_TAR_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'
export const OCI_EMPTY_JSON = 'application/vnd.oci.empty.v1+json'

export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
/** Uncompressed Docker layer; what containerd writes when it imports `docker save` output. */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar'
export const DOCKER_LAYER_TAR_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'

/** Annotation keys read by `readRefs` (image-spec annotations.md, containerd's `ctr image export`). */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name'
export const ANNOTATION_CONTAINERD_IMAGE_NAME = 'io.containerd.image.name'

/** Documents whose `manifests` array lists further descriptors. */
export function isIndexMediaType (mediaType: string): boolean {
  return mediaType === OCI_IMAGE_INDEX || mediaType === DOCKER_MANIFEST_LIST
}

/** Documents with a `config` and `layers`. */
export function isManifestMediaType (mediaType: string): boolean {
  return mediaType === OCI_IMAGE_MANIFEST || mediaType === DOCKER_MANIFEST
}
