import { parseManifestDocument as parseDocument, type ManifestDocument } from '../oci/index.js'
import { MAX_MANIFEST_BYTES } from './constants.js'
import { RegistryError } from './errors.js'

/**
 * A manifest or index as this registry takes it (oci's parseManifestDocument), refused with
 * MANIFEST_INVALID. As distribution-spec "Pushing Manifests" asks, a Content-Type (or the media
 * type it was fetched with) that disagrees with the document's own mediaType is refused too.
 */
export function parseManifestDocument (bytes: Buffer, contentType: string | undefined, what = 'the manifest'): ManifestDocument {
  return parseDocument(bytes, {
    what,
    contentType,
    agreeWithContentType: true,
    maxBytes: MAX_MANIFEST_BYTES,
    fail: (message, options) => new RegistryError('MANIFEST_INVALID', message, options),
  })
}
