import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { parseDescriptorList, isRecord, type Descriptor } from './descriptor.js'
import { OciInvalidIndexError, OciInvalidLayoutError } from './errors.js'
import { readJsonDocument } from './json-document.js'
import { OCI_INDEX_FILE_NAME, OCI_LAYOUT_FILE_NAME, OCI_LAYOUT_VERSION } from './media-types.js'

/** What skopeo writes into `oci-layout`; used for layouts shoal creates so trees match byte for byte. */
export const OCI_LAYOUT_FILE_BYTES = Buffer.from(`{"imageLayoutVersion": "${OCI_LAYOUT_VERSION}"}`)

/** A cheap sniff, no parsing: does `dir` look like an OCI image layout? */
export async function isOciLayout (dir: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
  options.signal?.throwIfAborted()
  const [layoutFile, indexFile] = await Promise.all([
    stat(join(dir, OCI_LAYOUT_FILE_NAME)).catch(() => undefined),
    stat(join(dir, OCI_INDEX_FILE_NAME)).catch(() => undefined),
  ])
  return layoutFile?.isFile() === true && indexFile?.isFile() === true
}

/** image-spec image-layout.md: `oci-layout` must say `{"imageLayoutVersion": "1.0.0"}`. */
export async function checkOciLayoutFile (dir: string, options: { signal?: AbortSignal } = {}): Promise<void> {
  const fail = (message: string, opts?: ErrorOptions): Error => new OciInvalidLayoutError(message, opts)
  const { value } = await readJsonDocument(join(dir, OCI_LAYOUT_FILE_NAME), { what: OCI_LAYOUT_FILE_NAME, fail, signal: options.signal })
  if (!isRecord(value) || value.imageLayoutVersion !== OCI_LAYOUT_VERSION) {
    throw new OciInvalidLayoutError(`${OCI_LAYOUT_FILE_NAME} in ${dir} should be {"imageLayoutVersion":"${OCI_LAYOUT_VERSION}"} but is ${JSON.stringify(value)}; this is not an OCI image layout shoal can read`)
  }
}

export interface LayoutIndex {
  /** The descriptors of index.json's `manifests`, in file order. */
  manifests: Descriptor[]
}

/** Reads and shape-checks index.json (size-limited). */
export async function readLayoutIndex (dir: string, options: { signal?: AbortSignal } = {}): Promise<LayoutIndex> {
  const fail = (message: string, opts?: ErrorOptions): Error => new OciInvalidIndexError(message, opts)
  const { value } = await readJsonDocument(join(dir, OCI_INDEX_FILE_NAME), { what: OCI_INDEX_FILE_NAME, fail, signal: options.signal })
  if (!isRecord(value)) throw fail(`${OCI_INDEX_FILE_NAME} is not a JSON object`)
  if (value.schemaVersion !== 2) throw fail(`${OCI_INDEX_FILE_NAME} has schemaVersion ${JSON.stringify(value.schemaVersion)}, expected 2`)
  return { manifests: parseDescriptorList(value, 'manifests', OCI_INDEX_FILE_NAME, fail) }
}
