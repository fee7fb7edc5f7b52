import { existsSync } from 'node:fs'
import {
  createLogger, DAEMON_OPTIONS, defaultConfigPath, formatListenAddress, resolveConfig, seedFromStore, settingsFromEnv, settingsFromFile, settingsFromFlags, startDaemon,
} from '../daemon/index.js'
import { envOf, settingOf } from '../settings/index.js'
import { parseCommand } from './commands.js'
import type { Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { UsageError } from './usage-error.js'

/**
 * `shoal daemon`: runs until SIGTERM/SIGINT, then stops in order (HTTP, swarm, store) so
 * the store is left consistent. Flags win over `SHOAL_*` variables, which win over the
 * config file (`--config FILE`, default DATA/config.json).
 */
export const daemon: Command = async (args, context) => {
  const { values } = parseCommand({ options: DAEMON_OPTIONS }, args)
  const seedFrom = typeof values['seed-from'] === 'string' ? values['seed-from'] : undefined
  const seedIds = Array.isArray(values['seed-id']) ? values['seed-id'].map(String) : undefined
  if (seedIds !== undefined && seedFrom === undefined) throw new UsageError('--seed-id needs --seed-from STORE')
  const flags = settingsFromFlags(values)
  if (context.dataExplicit) flags.dataDir = context.dataDir
  // Given as a global option, not taken from the variable: a flag, which wins over the file.
  if (context.api !== undefined && context.api !== process.env[envOf(settingOf('api'))]) flags.api = context.api
  if (context.apiTokenFile !== undefined && context.apiTokenFile !== process.env[envOf(settingOf('apiTokenFile'))]) flags.apiTokenFile = context.apiTokenFile

  const env = settingsFromEnv(process.env)
  const dataDir = (flags.dataDir ?? env.dataDir ?? context.dataDir) as string
  const configFlag = typeof values.config === 'string' ? values.config : undefined
  const configPath = configFlag ?? defaultConfigPath(dataDir)
  const file = configFlag !== undefined || existsSync(configPath) ? await settingsFromFile(configPath) : {}
  const config = resolveConfig({ flags, env, file }, context.dataDir)
  const logger = createLogger(config.logLevel, {}, context.stderr)
  const running = await startDaemon(config, logger)
  if (context.json) {
    const { api, registry, metrics } = running.listeners
    context.stdout.write(JSON.stringify({
      peerId: running.swarm.peerId, addresses: running.swarm.addresses(), api: formatListenAddress(api), registry: formatListenAddress(registry),
      ...(metrics !== undefined ? { metrics: formatListenAddress(metrics) } : {}),
    }) + '\n')
  }
  // --seed-from: snapshots from a store (s3://, gs://, file://) into this node, beside serving.
  const seeding = seedFrom !== undefined
    ? seedFromStore(running.store, seedFrom, seedIds, { env: process.env, logger, signal: context.signal }).catch(() => {})
    : undefined
  await new Promise<void>(resolve => {
    if (context.signal.aborted) resolve()
    context.signal.addEventListener('abort', () => { resolve() }, { once: true })
  })
  logger.info('stopping', { reason: String(context.signal.reason) })
  // A seed in progress stops with the signal; the store closes only after it has.
  await seeding
  await running.stop()
  return EXIT_OK
}
