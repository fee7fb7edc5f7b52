import { readFile, rename, writeFile } from 'node:fs/promises'
import type { Ban, BanList, BanSnapshot } from './ban-list.js'

/**
 * The ban list on disk, so a restart does not pardon a peer that was banned for sending bad
 * data or flooding: a small JSON file in the data directory, written whole to a temporary
 * name and renamed (a crash leaves the old list or the new one, never half of one). Bans
 * that have ended are dropped when it is read and when it is written.
 */

const FORMAT = 1

export interface BanFileLogger {
  warn: (msg: string, fields?: Record<string, unknown>) => void
}

export class BanFile {
  private writing: Promise<void> = Promise.resolve()
  private dirty = false

  constructor (private readonly path: string, private readonly bans: BanList, private readonly log: BanFileLogger) {}

  /**
   * Reads the saved bans into the list and saves again after each change. A file that does
   * not parse is set aside as PATH.unreadable (its bans are lost, the daemon still starts)
   * and said so in the log.
   */
  async load (): Promise<number> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      text = ''
    }
    let restored = 0
    if (text !== '') {
      const saved = parse(text)
      if (saved === undefined) {
        await rename(this.path, `${this.path}.unreadable`)
        this.log.warn('the saved ban list does not parse: set aside, starting with no bans', { path: this.path, setAside: `${this.path}.unreadable` })
      } else {
        this.bans.restore(saved)
        restored = this.bans.snapshot().peers.length
      }
    }
    this.bans.onChange = () => { this.save() }
    return restored
  }

  /** Writes the list soon; changes made meanwhile are folded into one write. */
  save (): void {
    if (this.dirty) return
    this.dirty = true
    this.writing = this.writing.then(async () => {
      this.dirty = false
      const tmp = `${this.path}.tmp`
      await writeFile(tmp, JSON.stringify({ format: FORMAT, ...this.bans.snapshot() }))
      await rename(tmp, this.path)
    }).catch((err: unknown) => {
      this.log.warn('could not save the ban list: bans in force now are lost at restart', { path: this.path, err })
    })
  }

  /** Waits for the last write (at stop). */
  async flush (): Promise<void> {
    this.bans.onChange = undefined
    await this.writing
  }
}

function parse (text: string): BanSnapshot | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const { format, peers, prefixes } = value as Record<string, unknown>
  if (format !== FORMAT || !Array.isArray(peers) || !Array.isArray(prefixes)) return undefined
  if (!peers.every(isBan) || !prefixes.every(isBan)) return undefined
  return { peers, prefixes }
}

function isBan (value: unknown): value is Ban {
  if (typeof value !== 'object' || value === null) return false
  const ban = value as Record<string, unknown>
  return typeof ban.peer === 'string' && typeof ban.reason === 'string' && typeof ban.until === 'number'
}
