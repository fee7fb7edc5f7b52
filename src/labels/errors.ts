/** A `--label` that is not `key=value` with a valid key and value. */
export class LabelError extends Error {
  readonly code = 'LABEL_INVALID'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'LabelError'
  }
}

/** A node selector (`--nodes arch=arm64,site=store-17`) that does not parse. */
export class SelectorError extends Error {
  readonly code = 'SELECTOR_INVALID'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'SelectorError'
  }
}

/** A platform (`--platform linux/arm64`) that is not OS/ARCH[/VARIANT]. */
export class PlatformError extends Error {
  readonly code = 'PLATFORM_INVALID'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'PlatformError'
  }
}
