export { startDaemon, type Daemon, type DaemonInit, type DaemonListeners } from './daemon.js'
export { resolveConfig, defaultConfigPath, DEFAULT_LISTEN, DEFAULT_REGISTRY } from './config.js'
export { createLogger, type Logger } from './logger.js'
export { parseRate, parseSize } from './rates.js'
export type { PullEvent, StatusResponse, PeerInfo, FleetResponse } from '../http/index.js'
export { generateSwarmKey } from '../swarm/index.js'
export { formatListenAddress, parseListenAddress, type ListenAddress } from '../http/index.js'
export { createContentSources, type ContentSourcesComponents } from './content-sources.js'
export { seedFromStore, type SeedInit } from './seed.js'
export { PullThrough, type PullThroughInit } from './pull-through.js'
export { ImageAssembler, type ImageAssemblerInit } from './image-assembler.js'
// The settings schema is its own module (below this one, so the CLI names settings without loading the daemon); the daemon's door still shows it.
export {
  API_SOCKET_NAME, ConfigError, DAEMON_OPTIONS, SETTINGS, settingsFromFlags, settingsFromEnv, settingsFromFile, settingsTable, envOf, fileKeyOf, flagOf,
  type DaemonConfig, type FlagSpec, type LogLevel, type RawSettings, type SettingSpec, type SettingType,
} from '../settings/index.js'
