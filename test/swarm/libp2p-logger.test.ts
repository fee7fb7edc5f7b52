import tty from 'node:tty'
import { afterEach, describe, expect, it } from 'vitest'
import { libp2pLogger } from '../../src/swarm/libp2p-logger.js'
import { useBareNodes } from './bare-nodes.js'

describe('libp2p\'s logger in a daemon', () => {
  const { start } = useBareNodes()
  const isatty = tty.isatty
  afterEach(() => { tty.isatty = isatty })

  it('makes no logger per connection or stream while DEBUG is unset', async () => {
    expect(process.env.DEBUG ?? '').toBe('')
    const a = await start()
    const b = await start()
    let asked = 0
    // libp2p's default logger asks isatty(2) for every debug instance it builds, enabled or not.
    tty.isatty = (fd: number): boolean => {
      asked++
      return isatty(fd)
    }
    await a.dial(b.getMultiaddrs()[0]!)
    for (let i = 0; i < 5; i++) await a.services.ping.ping(b.peerId)
    expect(a.getConnections(b.peerId)).toHaveLength(1)
    expect(asked).toBe(0)
  })

  it('leaves libp2p its own logger when DEBUG names something to log', () => {
    expect(libp2pLogger({ DEBUG: 'libp2p:*' })).toBeUndefined()
    const logger = libp2pLogger({})
    const log = logger?.forComponent('libp2p:yamux').newScope('outbound:1')
    expect(log?.enabled).toBe(false)
    expect(() => { log?.('a %s', 'message'); log?.error('an error'); log?.trace('a trace') }).not.toThrow()
  })
})
