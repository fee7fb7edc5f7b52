import type { ErrorCode } from './catalogue.js'

/**
 * The base of shoal's typed errors: a stable `code` from the catalogue, which callers, the CLI
 * and the APIs branch on and look statuses up by; a message for a person (what was wrong, what
 * to do); the cause kept. Each module derives its own base from it (StoreError, SwarmError, …),
 * so a caller can still ask which module refused, and one class per failure sets its `name`.
 */
export class CodedError<C extends ErrorCode = ErrorCode> extends Error {
  override name = 'CodedError'
  readonly code: C

  constructor (code: C, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}
