import type { Metadata } from './metadata.js'
import type { RefTarget } from './types.js'

/**
 * How many refs set by other publishers' signed records a store keeps (the swarm sets them:
 * swarm/ref-protocol.ts says why these numbers). Past either bound the oldest such ref goes.
 */
export interface HeardRefBounds {
  /** This node's publisher ID: its own records are neither counted nor evicted. */
  self: string
  /** Refs one other publisher's records set. */
  maxPerPublisher: number
  /** Refs all other publishers' records set together. */
  maxTotal: number
}

/** Why a ref was evicted: its publisher was over its bound, or everyone together was. */
export type HeardRefEviction = 'publisher' | 'total'

interface HeardRef {
  publisher: string
  sequence: number
}

/**
 * Refs whose current target came from a signed record, with its publisher and sequence, in
 * memory: what a bound counts and which ref goes first (the lowest sequence, i.e. signed the
 * longest ago). Read from the store's refs the first time a bound is checked, then kept in
 * step by every write of a ref (Store). Pure but for the first read.
 */
export class HeardRefs {
  private readonly refs = new Map<string, HeardRef>()
  private readonly perPublisher = new Map<string, number>()

  private constructor () {}

  static async load (meta: Metadata): Promise<HeardRefs> {
    const heard = new HeardRefs()
    for (const [name, target] of await meta.refTargets()) heard.note(name, target)
    return heard
  }

  /** The ref now names `target` (undefined: it is gone). */
  note (name: string, target: RefTarget | undefined): void {
    const held = this.refs.get(name)
    if (held !== undefined) {
      this.refs.delete(name)
      this.perPublisher.set(held.publisher, (this.perPublisher.get(held.publisher) ?? 1) - 1)
      if (this.perPublisher.get(held.publisher) === 0) this.perPublisher.delete(held.publisher)
    }
    if (target?.publisher === undefined || target.sequence === undefined) return
    this.refs.set(name, { publisher: target.publisher, sequence: target.sequence })
    this.perPublisher.set(target.publisher, (this.perPublisher.get(target.publisher) ?? 0) + 1)
  }

  count (publisher: string): number {
    return this.perPublisher.get(publisher) ?? 0
  }

  /** Refs set by every publisher but `self`. */
  total (self: string): number {
    return this.refs.size - this.count(self)
  }

  /** Refs of `publisher` (or of everyone but `self`), the lowest sequence first: the order they are evicted in. */
  oldest (of: { publisher: string } | { self: string }): string[] {
    const out: Array<[string, number]> = []
    for (const [name, ref] of this.refs) {
      if ('publisher' in of ? ref.publisher === of.publisher : ref.publisher !== of.self) out.push([name, ref.sequence])
    }
    return out.sort((a, b) => a[1] - b[1]).map(([name]) => name)
  }
}
