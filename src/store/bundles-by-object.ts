/**
 * Which bundles name each object, its size, and each bundle's bytes: the answer to "which bundle
 * holds this blob, and how big is it" (a registry request) and "which is the smallest" (a fleet peer's question) without
 * decoding a bundle manifest per question. Kept in memory, built from the manifests on the
 * first question and kept in step by the store as bundles are committed and removed; never
 * persisted, so it cannot drift from the manifests across a crash (the same reasoning as gc's
 * mark and sweep).
 */
export class BundlesByObject {
  /**
   * Object hash → its size and the IDs of the bundles naming it, in the order they came (most
   * objects: one). A size is each bundle's word (an object is its bytes, so honest bundles agree);
   * where two disagree it is not kept (undefined) and the caller reads the bundle it picks.
   */
  private readonly byObject = new Map<string, { size: number | undefined, ids: string[] }>()
  /** Bundle ID → the sum of its objects' sizes (each object once, as `LoadedBundle.objectSizes`). */
  private readonly bundleBytes = new Map<string, number>()

  add (bundleId: string, objectSizes: ReadonlyMap<string, number>): void {
    let bytes = 0
    for (const [object, size] of objectSizes) {
      bytes += size
      const named = this.byObject.get(object)
      if (named === undefined) {
        this.byObject.set(object, { size, ids: [bundleId] })
        continue
      }
      if (!named.ids.includes(bundleId)) named.ids.push(bundleId)
      if (named.size !== size) named.size = undefined
    }
    this.bundleBytes.set(bundleId, bytes)
  }

  remove (bundleId: string, objects: Iterable<string>): void {
    for (const object of objects) {
      const named = this.byObject.get(object)
      if (named === undefined) continue
      const left = named.ids.filter(id => id !== bundleId)
      if (left.length === 0) this.byObject.delete(object)
      else this.byObject.set(object, { size: named.size, ids: left })
    }
    this.bundleBytes.delete(bundleId)
  }

  /** The bundles naming `object` (a copy: the caller may keep it across awaits). */
  naming (object: string): string[] {
    return this.named(object)?.bundles ?? []
  }

  /** The bundles naming `object` (a copy) and its size (undefined where they disagree); undefined when none does. */
  named (object: string): { bundles: string[], size: number | undefined } | undefined {
    const named = this.byObject.get(object)
    return named === undefined ? undefined : { bundles: [...named.ids], size: named.size }
  }

  /** The bundle naming `object` with the fewest bytes, the first such on a tie; undefined when none does. */
  smallestNaming (object: string): { id: string, bytes: number } | undefined {
    let best: { id: string, bytes: number } | undefined
    for (const id of this.byObject.get(object)?.ids ?? []) {
      const bytes = this.bundleBytes.get(id)
      if (bytes !== undefined && (best === undefined || bytes < best.bytes)) best = { id, bytes }
    }
    return best
  }
}
