/**
 * Chunk tables of objects uploaded lately, kept for the manifest push that usually follows
 * within seconds, so building its bundle does not read every layer again. Bounded: a table
 * that fell out is recomputed from the object (the store's commitImageBundle does that).
 */
export class RecentChunkTables {
  private readonly tables = new Map<string, string[]>()

  constructor (private readonly capacity: number) {}

  remember (object: string, chunkHashes: string[] | undefined): void {
    if (chunkHashes === undefined) return
    this.tables.delete(object)
    this.tables.set(object, chunkHashes)
    if (this.tables.size > this.capacity) this.tables.delete(this.tables.keys().next().value as string)
  }

  get (object: string): string[] | undefined { return this.tables.get(object) }
}
