import { CodedError } from '../errors/index.js'

/** A setting's value refused, at start or when read: the message names the setting and the fix. */
export class ConfigError extends CodedError<'CONFIG_INVALID'> {
  constructor (message: string, options?: ErrorOptions) {
    super('CONFIG_INVALID', message, options)
    this.name = 'ConfigError'
  }
}
