/**
 * A listener's address is taken (a shoal daemon still running, as after a restart that came too
 * soon, or another program): which listener, and the setting that moves it. The code stays the
 * system's, as an unexplained one did.
 */
export class AddressInUseError extends Error {
  readonly code = 'EADDRINUSE'
  constructor (listener: string, address: string, remedy: string, options?: ErrorOptions) {
    super(`${listener} cannot listen on ${address}: the address is in use (by a shoal daemon still running, or another program: \`ss -ltnp\` names it); stop that, or ${remedy}`, options)
    this.name = 'AddressInUseError'
  }
}
