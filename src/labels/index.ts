/**
 * Node labels (`--label site=store-17`, plus the detected `os`/`arch`), the selectors that
 * pick nodes by them (`arch=arm64,site=store-17`), and OCI platforms. Pure: no I/O, so the
 * swarm, the daemon and the CLI can all check the same text the same way.
 */
export { LabelError, SelectorError, PlatformError } from './errors.js'
export { parseLabel, nodeLabels, formatLabels, MAX_LABELS, type NodeLabels } from './labels.js'
export { parseSelector, selectorMatches, formatSelector, ALL_NODES, MAX_SELECTOR_TERMS, type Selector } from './selector.js'
export { detectPlatform, platformLabels, platformOfLabels, parsePlatform, formatPlatform, platformMatches, type Platform } from './platform.js'
