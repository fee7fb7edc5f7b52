import type { PreheatIssued, PreheatStatus } from '../http/index.js'
import { parsePlatform, parseSelector } from '../labels/index.js'
import { COMMAND_SPECS, parseCommand } from './commands.js'
import { printJson, printLine, type Command } from './context.js'
import { requestJson } from './daemon-client.js'
import { EXIT_OK } from './exit-codes.js'
import { requireDaemon } from './peers.js'
import { formatBytes } from './progress.js'
import { UsageError } from './usage-error.js'

/**
 * `shoal preheat REF|ID [--nodes SELECTOR] [--platform OS/ARCH] [--cancel]`: every node that
 * trusts this one and matches the selector pulls the bundle in the background and pins it.
 * `shoal preheat` alone lists what this node does about the preheats it knows.
 */
export const preheat: Command = async (args, context) => {
  const { positionals, values } = parseCommand(COMMAND_SPECS.preheat, args)
  // Checked before anything else, so a typo is answered at once, daemon or not, and nothing is signed.
  if (values.nodes !== undefined) parseSelector(values.nodes)
  if (values.platform !== undefined) parsePlatform(values.platform)
  const api = await requireDaemon(context)
  if (positionals.length === 0) {
    if (values.nodes !== undefined || values.platform !== undefined || values.cancel === true) throw new UsageError('preheat needs a REF or ID to preheat or cancel')
    const list = await requestJson<PreheatStatus[]>(api, 'GET', '/api/v1/preheats', undefined, context.signal)
    if (context.json) printJson(context, list)
    else for (const p of list) printLine(context, describe(p))
    return EXIT_OK
  }
  if (positionals.length > 1) throw new UsageError('preheat takes one REF or ID')
  const issued = await requestJson<PreheatIssued>(api, 'POST', '/api/v1/preheat', {
    ref: positionals[0], nodes: values.nodes, platform: values.platform, cancel: values.cancel === true,
  }, context.signal)
  if (context.json) printJson(context, issued)
  else printLine(context, `${issued.cancelled ? 'cancelled preheat of' : 'preheating'} ${issued.bundleId}${issued.ref !== undefined ? ` (${issued.ref})` : ''} on ${issued.selector === '' ? 'every node' : issued.selector}${issued.platform !== undefined ? ` for ${issued.platform}` : ''}; nodes that trust ${issued.publisher} act on it`)
  return EXIT_OK
}

/** `shoal unpin ID|REF`: the quota may evict the bundle here again; a preheat of it no longer holds it on this node. */
export const unpin: Command = async (args, context) => {
  const { positionals } = parseCommand(COMMAND_SPECS.unpin, args)
  if (positionals.length !== 1) throw new UsageError('unpin takes one ID or REF')
  const result = await requestJson<{ bundleId: string, preheated: boolean }>(await requireDaemon(context), 'POST', '/api/v1/unpin', { ref: positionals[0] }, context.signal)
  if (context.json) printJson(context, result)
  else printLine(context, `unpinned ${result.bundleId}${result.preheated ? ' (its preheat no longer holds it here)' : ''}`)
  return EXIT_OK
}

function describe (p: PreheatStatus): string {
  const progress = p.totalBytes > 0 ? ` ${formatBytes(p.presentBytes)}/${formatBytes(p.totalBytes)}` : ''
  return `${p.bundleId}  ${p.state.padEnd(12)}${progress}  ${p.selector === '' ? '(every node)' : p.selector}${p.platform !== undefined ? ` ${p.platform}` : ''}${p.ref !== undefined ? `  ${p.ref}` : ''}${p.error !== undefined ? `  last error: ${p.error}` : ''}`
}
