export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ConfigError'
  }
}
