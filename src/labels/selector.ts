import { LabelError, SelectorError } from './errors.js'
import { checkLabelKey, checkLabelValue, type NodeLabels } from './labels.js'

/**
 * Which nodes something is meant for: every `key=value` must hold (AND). The empty selector
 * matches every node. Kept to equality on purpose: it travels in signed records that older
 * nodes must read the same way, and "arch=arm64,site=store-17" is what operators asked for.
 */
export interface Selector {
  readonly terms: ReadonlyArray<{ readonly key: string, readonly value: string }>
}

/** A selector travels in a record of a few hundred bytes. */
export const MAX_SELECTOR_TERMS = 16

export const ALL_NODES: Selector = Object.freeze({ terms: Object.freeze([]) })

/** `arch=arm64,site=store-17` → two terms; `''` → every node. */
export function parseSelector (text: string): Selector {
  const trimmed = text.trim()
  if (trimmed === '') return ALL_NODES
  const terms: Array<{ key: string, value: string }> = []
  const seen = new Map<string, string>()
  for (const raw of trimmed.split(',')) {
    const term = raw.trim()
    const at = term.indexOf('=')
    if (term === '' || at < 0) {
      throw new SelectorError(`selector ${JSON.stringify(text)}: ${term === '' ? 'an empty term' : `the term ${JSON.stringify(term)} is not KEY=VALUE`}; write e.g. arch=arm64,site=store-17`)
    }
    let key: string
    let value: string
    try {
      key = checkLabelKey(term.slice(0, at).trim(), `selector ${JSON.stringify(text)}`)
      value = checkLabelValue(term.slice(at + 1).trim(), `selector ${JSON.stringify(text)}`)
    } catch (err) {
      if (err instanceof LabelError) throw new SelectorError(err.message, { cause: err })
      throw err
    }
    const before = seen.get(key)
    // `arch=amd64,arch=arm64` matches nothing: surely a mistake, so say so instead of preheating nowhere.
    if (before !== undefined && before !== value) throw new SelectorError(`selector ${JSON.stringify(text)} asks for ${key}=${before} and ${key}=${value} at once, which no node is; preheat each separately`)
    if (before === undefined) terms.push({ key, value })
    seen.set(key, value)
  }
  if (terms.length > MAX_SELECTOR_TERMS) throw new SelectorError(`selector ${JSON.stringify(text)} has ${terms.length} terms, more than ${MAX_SELECTOR_TERMS}`)
  terms.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  return Object.freeze({ terms: Object.freeze(terms) })
}

export function selectorMatches (selector: Selector, labels: NodeLabels): boolean {
  return selector.terms.every(t => labels[t.key] === t.value)
}

/** The canonical text (terms sorted by key): what is signed and shown. */
export function formatSelector (selector: Selector): string {
  return selector.terms.map(t => `${t.key}=${t.value}`).join(',')
}
