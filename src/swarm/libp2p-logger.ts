import type { ComponentLogger, Logger } from '@libp2p/interface'

/**
 * libp2p's logger for a daemon: its default unless `DEBUG` names something to log, and
 * otherwise one silent logger for everything.
 *
 * libp2p makes a logger per connection and per stream (yamux's `newScope` for each stream it
 * opens or accepts), and its default (weald, a port of `debug`) builds each one whole, enabled
 * or not: two or three `debug` instances, each asking `isatty(2)` of the kernel, hashing the
 * name for a colour and matching it against `DEBUG`'s patterns. At 16 hosts every stream a
 * neighbour opens (pings, have, status, lane offers, the DHT) paid that; in an edge's profile
 * `isatty`, weald and the logger package were ~1.3% of its busy main thread. Which names log is
 * read from `DEBUG` once at start (weald reads it then too; shoal never enables more at run
 * time), so with it unset no logger can ever print and one object answers for all of them.
 */
export function libp2pLogger (env: NodeJS.ProcessEnv = process.env): ComponentLogger | undefined {
  // undefined: libp2p's own default, which reads DEBUG.
  if ((env.DEBUG ?? '') !== '') return undefined
  return { forComponent: () => SILENT }
}

const silent = (): void => {}

const SILENT: Logger = Object.assign((_formatter: unknown, ..._args: unknown[]): void => {}, {
  error: silent,
  trace: silent,
  enabled: false,
  newScope: (): Logger => SILENT,
})
