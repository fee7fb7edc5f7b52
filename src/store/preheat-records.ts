import type { Metadata } from './metadata.js'

/** A verified, trusted preheat record as the store keeps it (the swarm checked signature and trust). */
export interface PreheatRecordUpdate {
  bundleId: string
  sequence: number
  cancelled: boolean
  signed: Uint8Array
}

/**
 * Preheat records in LevelDB, one per bundle, so intents survive a restart and are handed to
 * every neighbour that connects. Bounded: at `max` records a new bundle's record takes the
 * place of the oldest cancelled one, or is refused ('full') when none is cancelled.
 */
export class PreheatRecords {
  constructor (private readonly meta: Metadata, private readonly max: number) {}

  /** Keeps the record unless one with the same or a higher sequence is held: a replay never undoes a cancel. */
  async accept (update: PreheatRecordUpdate): Promise<'accepted' | 'stale' | 'full'> {
    const current = await this.meta.getPreheat(update.bundleId)
    if (current !== undefined && current.sequence >= update.sequence) return 'stale'
    if (current === undefined) {
      const entries = await this.meta.preheatEntries()
      if (entries.length >= this.max) {
        const cancelled = entries.filter(([, e]) => e.cancelled).sort(([, a], [, b]) => a.sequence - b.sequence)[0]
        if (cancelled === undefined) return 'full'
        await this.meta.deletePreheat(cancelled[0])
      }
    }
    await this.meta.putPreheat(update.bundleId, {
      sequence: update.sequence, cancelled: update.cancelled, signed: Buffer.from(update.signed).toString('base64'), released: false,
    })
    return 'accepted'
  }

  async signed (): Promise<Uint8Array[]> {
    return (await this.meta.preheatEntries()).map(([, e]) => Uint8Array.from(Buffer.from(e.signed, 'base64')))
  }

  /** The operator unpinned the bundle: the record held now no longer pins it here. */
  async release (bundleId: string): Promise<boolean> {
    const current = await this.meta.getPreheat(bundleId)
    if (current === undefined || current.released) return false
    await this.meta.putPreheat(bundleId, { ...current, released: true })
    return true
  }

  /** Whether a record held asks for the bundle (not cancelled): a bundle it names is not the store's to drop. */
  async asksFor (bundleId: string): Promise<boolean> {
    const current = await this.meta.getPreheat(bundleId)
    return current !== undefined && !current.cancelled
  }

  async isReleased (bundleId: string): Promise<boolean> {
    return (await this.meta.getPreheat(bundleId))?.released === true
  }
}
