import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createLogger, REDACTED } from '../../src/daemon/logger.js'

/** A real stream that collects what the logger writes; `isTTY` as a terminal would set it. */
function sink (tty = false): { out: PassThrough & { isTTY?: boolean }, text: () => string, lines: () => Array<Record<string, unknown>> } {
  const out: PassThrough & { isTTY?: boolean } = new PassThrough()
  if (tty) out.isTTY = true
  let text = ''
  out.setEncoding('utf8').on('data', (s: string) => { text += s })
  return { out, text: () => text, lines: () => text.trim().split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>) }
}

describe('the daemon logger (pino)', () => {
  it('writes one JSON object a line, with level names, an ISO time, the message and the fields', () => {
    const { out, lines } = sink()
    const log = createLogger('info', { node: 'a' }, out)
    log.debug('not shown at info')
    log.info('bundle pushed', { bundleId: 'b'.repeat(64), refs: ['x/app:1'] })
    log.child({ module: 'swarm' }).warn('peer banned', { peer: 'p' })
    const [first, second] = lines()
    expect(lines()).toHaveLength(2)
    expect(first).toMatchObject({ level: 'info', msg: 'bundle pushed', node: 'a', bundleId: 'b'.repeat(64), refs: ['x/app:1'] })
    expect(new Date(String(first?.time)).toISOString()).toBe(first?.time)
    expect(second).toMatchObject({ level: 'warn', msg: 'peer banned', module: 'swarm', node: 'a', peer: 'p' })
  })

  it('redacts secrets wherever a caller put them', () => {
    const { out, text, lines } = sink()
    const log = createLogger('info', {}, out)
    log.info('config', {
      password: 'hunter2',
      config: { upstreamPassword: 'hunter3', swarmKey: '/key/swarm.key', apiToken: 'tok-1', dataDir: '/var/lib/shoal' },
      request: { headers: { authorization: 'Bearer tok-2', host: 'localhost' } },
    })
    for (const secret of ['hunter2', 'hunter3', 'tok-1', 'tok-2', '/key/swarm.key']) expect(text()).not.toContain(secret)
    expect(lines()[0]).toMatchObject({
      password: REDACTED,
      config: { upstreamPassword: REDACTED, swarmKey: REDACTED, apiToken: REDACTED, dataDir: '/var/lib/shoal' },
      request: { headers: { authorization: REDACTED, host: 'localhost' } },
    })
  })

  it('writes a line whose fields hold an event or an abort signal, and never throws (one crashed a daemon)', () => {
    const { out, lines } = sink()
    const log = createLogger('info', {}, out)
    log.warn('chunk stream closed', { error: new Event('close'), signal: AbortSignal.abort() })
    log.child({ module: 'swarm' }).warn('nested', { detail: { stream: { reset: new Event('reset') } } })
    expect(lines()).toHaveLength(2)
    expect(lines()[0]).toMatchObject({ msg: 'chunk stream closed', error: { event: 'close' }, signal: { aborted: true } })
    expect(lines()[1]).toMatchObject({ msg: 'nested', module: 'swarm' })
  })

  it('shows an error by its name, message and code (the stack only for one without a code)', () => {
    const { out, lines } = sink()
    const log = createLogger('info', {}, out)
    log.warn('pull failed', { err: Object.assign(new Error('no peer had it'), { code: 'SWARM_BUNDLE_NOT_FOUND' }) })
    log.error('fault', { err: new TypeError('x is undefined') })
    const [known, fault] = lines()
    expect(known?.err).toEqual({ name: 'Error', message: 'no peer had it', code: 'SWARM_BUNDLE_NOT_FOUND' })
    expect(fault?.err).toMatchObject({ name: 'TypeError', message: 'x is undefined', stack: expect.stringContaining('TypeError: x is undefined') as unknown })
  })

  it('shows a network condition a library named (a failed dial) by name and message, and each error of an aggregate, with no stack', () => {
    const { out, lines } = sink()
    const log = createLogger('info', {}, out)
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4001'), { name: 'ConnectionFailedError' })
    log.warn('could not dial 12D3Koo', { err: new AggregateError([refused, new TypeError('bad address')], 'All multiaddr dials failed') })
    log.warn('could not dial 12D3Koo', { err: refused })
    const [all, one] = lines()
    expect(all?.err).toEqual({
      name: 'AggregateError',
      message: 'All multiaddr dials failed',
      errors: [
        { name: 'ConnectionFailedError', message: 'connect ECONNREFUSED 127.0.0.1:4001' },
        { name: 'TypeError', message: 'bad address', stack: expect.stringContaining('TypeError: bad address') as unknown },
      ],
    })
    expect(one?.err).toEqual({ name: 'ConnectionFailedError', message: 'connect ECONNREFUSED 127.0.0.1:4001' })
  })

  it('prints pretty lines for a person on a terminal, and JSON when asked even there', () => {
    const terminal = sink(true)
    createLogger('info', {}, terminal.out).info('daemon started', { peerId: '12D3Koo' })
    expect(terminal.text()).toMatch(/INFO.*daemon started/)
    expect(terminal.text()).toContain('12D3Koo')
    expect(() => JSON.parse(terminal.text())).toThrow()
    const forced = sink(true)
    createLogger('info', {}, forced.out, { format: 'json' }).info('daemon started')
    expect(forced.lines()[0]).toMatchObject({ msg: 'daemon started' })
  })
})
