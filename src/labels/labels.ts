import { LabelError } from './errors.js'

/** A node's labels: `site=store-17`, plus the detected `os` and `arch`. */
export type NodeLabels = Readonly<Record<string, string>>

/**
 * Keys and values as Kubernetes spells label values (a fleet's labels often come from there):
 * letters, digits, `.`, `_`, `-`; a key may also hold `/` (`example.com/rack`). Nothing that
 * a selector uses as syntax (`,` and `=`) and nothing a log line or table would mangle.
 */
const KEY = /^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/
const VALUE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/
/** Labels travel in every status a node gossips: a node has a few, not hundreds. */
export const MAX_LABELS = 32

export function checkLabelKey (key: string, where: string): string {
  if (!KEY.test(key)) throw new LabelError(`${where}: the key ${JSON.stringify(key)} is not a label key (1–63 of a-z 0-9 . _ - /, starting and ending with a letter or digit)`)
  return key
}

export function checkLabelValue (value: string, where: string): string {
  if (!VALUE.test(value)) throw new LabelError(`${where}: the value ${JSON.stringify(value)} is not a label value (1–63 of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit)`)
  return value
}

/** `site=store-17` → `['site', 'store-17']`. */
export function parseLabel (text: string): [string, string] {
  const at = text.indexOf('=')
  if (at < 0) throw new LabelError(`label ${JSON.stringify(text)} is not KEY=VALUE; write e.g. --label site=store-17`)
  const where = `label ${JSON.stringify(text)}`
  return [checkLabelKey(text.slice(0, at).trim(), where), checkLabelValue(text.slice(at + 1).trim(), where)]
}

/**
 * The node's labels: the detected ones (`os`, `arch`, …) under those the operator gave, so an
 * operator can correct a detection (an amd64 machine running arm64 images under emulation).
 * A key given twice is refused: which one was meant cannot be guessed.
 */
export function nodeLabels (given: readonly string[], detected: NodeLabels): NodeLabels {
  const out: Record<string, string> = { ...detected }
  const seen = new Set<string>()
  for (const text of given) {
    const [key, value] = parseLabel(text)
    if (seen.has(key)) throw new LabelError(`label ${key} is given twice; give each key once`)
    seen.add(key)
    out[key] = value
  }
  if (Object.keys(out).length > MAX_LABELS) throw new LabelError(`a node has at most ${MAX_LABELS} labels, not ${Object.keys(out).length}`)
  return Object.freeze(out)
}

/** `{ arch: 'amd64', site: 'a' }` → `arch=amd64,site=a` (sorted, for logs and tables). */
export function formatLabels (labels: NodeLabels): string {
  return Object.keys(labels).sort().map(k => `${k}=${labels[k]}`).join(',')
}
