import { CodedError } from '../errors/index.js'

export class UsageError extends CodedError<'USAGE'> {
  constructor (message: string) {
    super('USAGE', `${message}; see \`shoal --help\``)
    this.name = 'UsageError'
  }
}
