export class UsageError extends Error {
  readonly code = 'USAGE'
  constructor (message: string) {
    super(`${message}; see \`shoal --help\``)
    this.name = 'UsageError'
  }
}
