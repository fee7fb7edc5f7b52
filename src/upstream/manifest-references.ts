import {
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, parseManifestDocument, type ManifestDocument,
} from '../oci/index.js'
import { MAX_UPSTREAM_MANIFEST_BYTES } from './constants.js'
import { UpstreamManifestInvalidError } from './errors.js'

/** What we ask an upstream for when resolving a manifest: containerd's list, without `*∕*`. */
export const MANIFEST_ACCEPT = [OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ')

/**
 * Reads a manifest or index fetched from the upstream (its bytes already checked against
 * their digest), as oci's parseManifestDocument reads any: schema 2, a media type we store
 * (the document's own, else the response's Content-Type, else its shape), sha256
 * descriptors with sizes. A refusal is UPSTREAM_MANIFEST_INVALID.
 */
export function parseUpstreamManifest (bytes: Buffer, contentType: string | null, what: string): ManifestDocument {
  return parseManifestDocument(bytes, {
    what: `${what} from the upstream`,
    contentType,
    maxBytes: MAX_UPSTREAM_MANIFEST_BYTES,
    fail: message => new UpstreamManifestInvalidError(message),
  })
}
