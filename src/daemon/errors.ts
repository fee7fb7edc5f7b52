import { CodedError } from '../errors/index.js'

export class ConfigError extends CodedError<'CONFIG_INVALID'> {
  constructor (message: string, options?: ErrorOptions) {
    super('CONFIG_INVALID', message, options)
    this.name = 'ConfigError'
  }
}
