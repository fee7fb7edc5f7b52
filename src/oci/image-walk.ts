import { MAX_DESCRIPTOR_DEPTH } from './constants.js'
import type { ImageReference, ManifestDocument } from './manifest-document.js'

/** Where the walk stands when it shows a descriptor. */
export interface ImageWalkStep {
  /** The document that names the descriptor: an index (the descriptor is a child manifest or index) or a manifest (a config or layer). */
  parent: ManifestDocument
  /** Indexes above the parent: 0 for the document the walk started at. */
  depth: number
  /** The descriptor's place in the parent's references: an index's `manifests[position]`; a manifest's config at 0, its `layers[position - 1]`. */
  position: number
}

/**
 * Called once per descriptor, parents before children. For a child of an index, the child's
 * document (read and parsed however the caller holds it: a store, the fleet, an upstream) to
 * walk into, or undefined to go no deeper there (not here, filtered out). For a config or a
 * layer the answer is not used.
 */
export type ImageVisitor = (reference: ImageReference, step: ImageWalkStep) => Promise<ManifestDocument | undefined>

export interface ImageWalkOptions {
  /** How an index nested deeper than `maxDepth` is refused; without it, it is not walked into. */
  fail?: (message: string) => Error
  maxDepth?: number
  signal?: AbortSignal
}

/**
 * Walks an image from its top document (an index or a manifest): index → child indexes and
 * platform manifests → their config and layers. The one walk that the registry's push, the
 * pull-through from an upstream, the daemon's platform filter and the layout check share; what
 * each does with a descriptor (collect it, check it is held, fetch it) is the visitor's.
 */
export async function walkImage (root: ManifestDocument, visit: ImageVisitor, options: ImageWalkOptions = {}): Promise<void> {
  // image-spec: an index may nest indexes; deeper than this is not an image anyone builds.
  const maxDepth = options.maxDepth ?? MAX_DESCRIPTOR_DEPTH
  const walk = async (document: ManifestDocument, depth: number): Promise<void> => {
    if (document.kind === 'index' && depth >= maxDepth) {
      if (options.fail !== undefined) throw options.fail(`image indexes nest deeper than ${maxDepth} levels`)
      return
    }
    for (const [position, reference] of document.references.entries()) {
      options.signal?.throwIfAborted()
      const child = await visit(reference, { parent: document, depth, position })
      if (child !== undefined && document.kind === 'index') await walk(child, depth + 1)
    }
  }
  await walk(root, 0)
}
