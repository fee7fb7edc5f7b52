/**
 * Which bundles name each object: the answer to "which bundle holds this blob" (a registry
 * request, a fleet peer's question) without decoding every bundle manifest per question. Kept
 * in memory, built from the manifests on the first question and kept in step by the store as
 * bundles are committed and removed; never persisted, so it cannot drift from the manifests
 * across a crash (the same reasoning as gc's mark and sweep).
 */
export class BundlesByObject {
  /** Object hash → IDs of the bundles naming it, in the order they came (most objects: one). */
  private readonly byObject = new Map<string, string[]>()

  add (bundleId: string, objects: Iterable<string>): void {
    for (const object of objects) {
      const ids = this.byObject.get(object)
      if (ids === undefined) this.byObject.set(object, [bundleId])
      else if (!ids.includes(bundleId)) ids.push(bundleId)
    }
  }

  remove (bundleId: string, objects: Iterable<string>): void {
    for (const object of objects) {
      const ids = this.byObject.get(object)
      if (ids === undefined) continue
      const left = ids.filter(id => id !== bundleId)
      if (left.length === 0) this.byObject.delete(object)
      else this.byObject.set(object, left)
    }
  }

  /** The bundles naming `object` (a copy: the caller may keep it across awaits). */
  naming (object: string): string[] {
    return [...(this.byObject.get(object) ?? [])]
  }
}
