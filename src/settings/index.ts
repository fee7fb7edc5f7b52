// The settings module's only import surface: the daemon's one settings schema (DESIGN.md "one
// config schema"), each setting's flag, variable and file key, and their readers. Below the
// daemon, which resolves them (config.ts), and the CLI, which names them in its messages
// without loading the daemon.
export {
  API_SOCKET_NAME, DAEMON_OPTIONS, SETTINGS, settingsFromFlags, settingsFromEnv, settingsFromFile, settingsTable, envOf, fileKeyOf, flagOf, settingLabel, settingOf,
  type FlagSpec, type SettingSpec, type SettingType,
} from './settings.js'
export { LOG_LEVELS, type DaemonConfig, type LogLevel, type RawSettings } from './daemon-config.js'
export { ConfigError } from './errors.js'
