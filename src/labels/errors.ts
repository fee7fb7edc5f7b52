import { CodedError } from '../errors/index.js'

/** A `--label` that is not `key=value` with a valid key and value. */
export class LabelError extends CodedError<'LABEL_INVALID'> {
  constructor (message: string, options?: ErrorOptions) {
    super('LABEL_INVALID', message, options)
    this.name = 'LabelError'
  }
}

/** A node selector (`--nodes arch=arm64,site=store-17`) that does not parse. */
export class SelectorError extends CodedError<'SELECTOR_INVALID'> {
  constructor (message: string, options?: ErrorOptions) {
    super('SELECTOR_INVALID', message, options)
    this.name = 'SelectorError'
  }
}

/** A platform (`--platform linux/arm64`) that is not OS/ARCH[/VARIANT]. */
export class PlatformError extends CodedError<'PLATFORM_INVALID'> {
  constructor (message: string, options?: ErrorOptions) {
    super('PLATFORM_INVALID', message, options)
    this.name = 'PlatformError'
  }
}
