import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { AccessDeniedError } from '../../src/http/index.js'
import { createRefusalLog, LOGGED_REFUSALS_MAX, REFUSAL_LOG_WINDOW_MS } from '../../src/http/refusal-log.js'

/** The parts of a request the log reads: its Host, method and client address. */
function request (host: string, client: string): IncomingMessage {
  return { headers: { host }, method: 'HEAD', socket: { remoteAddress: client } } as unknown as IncomingMessage
}

const hostRefused = (host: string): AccessDeniedError => new AccessDeniedError(403, 'HOST_REFUSED', `this listener does not answer to Host ${host}; add --allowed-host ${host}`)

function capture (): { lines: Array<{ msg: string, fields?: Record<string, unknown> }>, logger: { debug: () => void, info: () => void, warn: (msg: string, fields?: Record<string, unknown>) => void, error: () => void } } {
  const lines: Array<{ msg: string, fields?: Record<string, unknown> }> = []
  return { lines, logger: { debug: () => {}, info: () => {}, warn: (msg, fields) => { lines.push({ msg, fields }) }, error: () => {} } }
}

describe('the refused-request log', () => {
  it('logs a misconfiguration that comes after strangers used up a window\'s kinds, in the next window and in its summary', () => {
    let clock = 0
    const { lines, logger } = capture()
    const log = createRefusalLog(logger, () => clock)
    // A scanner's Hosts first: more kinds than a window logs.
    for (let i = 0; i < LOGGED_REFUSALS_MAX + 4; i++) log(request(`scan${i}.example`, '203.0.113.9'), hostRefused(`scan${i}.example`))
    expect(lines.filter(l => l.msg === 'request refused')).toHaveLength(LOGGED_REFUSALS_MAX)
    expect(lines.filter(l => l.msg.includes('kinds of refused request logged'))).toHaveLength(1)
    // Then the operator's hosts.toml names the mirror by a name it was not given: every pull is refused.
    const mirror = request('mirror.example.com:5050', '127.0.0.1')
    for (let i = 0; i < 5; i++) log(mirror, hostRefused('mirror.example.com'))
    const ofMirror = (): unknown[] => lines.filter(l => l.msg === 'request refused' && l.fields?.host === 'mirror.example.com:5050')
    // Before: never logged, for the daemon's life.
    expect(ofMirror()).toHaveLength(0)
    clock += REFUSAL_LOG_WINDOW_MS
    log(mirror, hostRefused('mirror.example.com'))
    expect(ofMirror()).toHaveLength(1)
    const summary = lines.find(l => l.msg.startsWith('refused requests not logged in the last window'))
    expect(summary?.fields).toMatchObject({ refusals: 9, kinds: 5 })
    expect((summary?.fields?.mostFrequent as unknown[])[0]).toMatchObject({ host: 'mirror.example.com:5050', client: '127.0.0.1', code: 'HOST_REFUSED', refusals: 5, reason: expect.stringContaining('--allowed-host mirror.example.com') })
    // Once per kind in a window: the same refusal again is not logged again in it.
    log(mirror, hostRefused('mirror.example.com'))
    expect(ofMirror()).toHaveLength(1)
    clock += REFUSAL_LOG_WINDOW_MS
    log(mirror, hostRefused('mirror.example.com'))
    expect(ofMirror()).toHaveLength(2)
  })
})
