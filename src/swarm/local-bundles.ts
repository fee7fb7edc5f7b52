import { bundleObjects, chunkCount, type BundleManifest } from '../manifest/index.js'

/**
 * The bundles this node is interested in (held or being pulled) and their objects, so that
 * have messages and chunk requests from peers can be checked against our own manifests
 * without a store round trip per message.
 */

export interface LocalObject {
  size: number
  chunkCount: number
  bundles: Set<string>
}

export class LocalBundles {
  private readonly bundles = new Map<string, string[]>()
  private readonly objects = new Map<string, LocalObject>()

  /** Returns false when the bundle was already known. */
  add (bundleId: string, manifest: BundleManifest): boolean {
    if (this.bundles.has(bundleId)) return false
    const hashes: string[] = []
    for (const object of bundleObjects(manifest)) {
      hashes.push(object.hash)
      let entry = this.objects.get(object.hash)
      if (entry === undefined) {
        entry = { size: object.size, chunkCount: chunkCount(object.size, manifest.chunkSize), bundles: new Set() }
        this.objects.set(object.hash, entry)
      }
      entry.bundles.add(bundleId)
    }
    this.bundles.set(bundleId, hashes)
    return true
  }

  remove (bundleId: string): void {
    const hashes = this.bundles.get(bundleId)
    if (hashes === undefined) return
    this.bundles.delete(bundleId)
    for (const hash of hashes) {
      const entry = this.objects.get(hash)
      entry?.bundles.delete(bundleId)
      if (entry?.bundles.size === 0) this.objects.delete(hash)
    }
  }

  has (bundleId: string): boolean {
    return this.bundles.has(bundleId)
  }

  ids (): string[] {
    return [...this.bundles.keys()]
  }

  objectsOf (bundleId: string): readonly string[] {
    return this.bundles.get(bundleId) ?? []
  }

  object (hash: string): LocalObject | undefined {
    return this.objects.get(hash)
  }

  /** Any bundle naming the object: the store checks chunks against that bundle's table. */
  bundleOf (hash: string): string | undefined {
    const entry = this.objects.get(hash)
    if (entry === undefined) return undefined
    for (const id of entry.bundles) return id
    return undefined
  }
}
