import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import {
  createLogger, defaultConfigPath, formatListenAddress, resolveConfig, seedFromStore, settingsFromEnv, settingsFromFile, startDaemon, type RawSettings,
} from '../daemon/index.js'
import type { Command } from './context.js'
import { EXIT_OK } from './exit-codes.js'
import { UsageError } from './usage-error.js'

/**
 * `shoal daemon`: runs until SIGTERM/SIGINT, then stops in order (HTTP, swarm, store) so
 * the store is left consistent. Flags win over `SHOAL_*` variables, which win over the
 * config file (`--config FILE`, default DATA/config.json).
 */
export const daemon: Command = async (args, context) => {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      registry: { type: 'string' },
      metrics: { type: 'string' },
      'allowed-host': { type: 'string', multiple: true },
      'push-network': { type: 'string', multiple: true },
      listen: { type: 'string', multiple: true },
      bootstrap: { type: 'string', multiple: true },
      'no-mdns': { type: 'boolean' },
      gateway: { type: 'boolean' },
      'max-upload': { type: 'string' },
      'max-download': { type: 'string' },
      'swarm-key': { type: 'string' },
      trust: { type: 'string', multiple: true },
      upstream: { type: 'string' },
      'allow-push': { type: 'boolean' },
      quota: { type: 'string' },
      'log-level': { type: 'string' },
      'seed-from': { type: 'string' },
      'seed-id': { type: 'string', multiple: true },
    },
  })
  if (values['seed-id'] !== undefined && values['seed-from'] === undefined) throw new UsageError('--seed-id needs --seed-from STORE')
  const flags: RawSettings = {}
  if (context.dataExplicit) flags.dataDir = context.dataDir
  if (context.api !== undefined && context.api !== process.env.SHOAL_API) flags.api = context.api
  if (context.apiTokenFile !== undefined && context.apiTokenFile !== process.env.SHOAL_API_TOKEN_FILE) flags.apiTokenFile = context.apiTokenFile
  if (values.registry !== undefined) flags.registry = values.registry
  if (values.metrics !== undefined) flags.metrics = values.metrics
  if (values['allowed-host'] !== undefined) flags.allowedHosts = values['allowed-host']
  if (values['push-network'] !== undefined) flags.pushNetworks = values['push-network']
  if (values.listen !== undefined) flags.listen = values.listen
  if (values.bootstrap !== undefined) flags.bootstrap = values.bootstrap
  if (values['no-mdns'] === true) flags.mdns = false
  if (values.gateway === true) flags.gateway = true
  if (values['max-upload'] !== undefined) flags.maxUploadBytesPerSecond = values['max-upload']
  if (values['max-download'] !== undefined) flags.maxDownloadBytesPerSecond = values['max-download']
  if (values['swarm-key'] !== undefined) flags.swarmKeyFile = values['swarm-key']
  if (values.trust !== undefined) flags.trust = values.trust
  if (values.upstream !== undefined) flags.upstream = values.upstream
  if (values['allow-push'] === true) flags.allowPush = true
  if (values.quota !== undefined) flags.quotaBytes = values.quota
  if (values['log-level'] !== undefined) flags.logLevel = values['log-level']

  const env = settingsFromEnv(process.env)
  const dataDir = (flags.dataDir ?? env.dataDir ?? context.dataDir) as string
  const configPath = values.config ?? defaultConfigPath(dataDir)
  const file = values.config !== undefined || existsSync(configPath) ? await settingsFromFile(configPath) : {}
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
  const seeding = values['seed-from'] !== undefined
    ? seedFromStore(running.store, values['seed-from'], values['seed-id'], { env: process.env, logger, signal: context.signal }).catch(() => {})
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
