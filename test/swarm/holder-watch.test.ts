import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ChunkBitmap } from '../../src/manifest/index.js'
import { HaveList } from '../../src/swarm/have-list.js'
import { HolderWatch, type NoHolder } from '../../src/swarm/holder-watch.js'
import { NO_HOLDER_SEARCH_MS, NO_HOLDER_SETTLE_MS, SILENT_HOLDER_WAIT_MS } from '../../src/swarm/constants.js'

const BUNDLE = 'b'.repeat(64)
const OBJECT = 'o'.repeat(64)

/**
 * The swarm's "no holder" verdict, on a real have-list, with the connections and bans a test
 * sets (the node shell's part) and a fake clock for its bounds: the verdict must come at once
 * when nobody may hold the object, and never while a connected, unbanned peer says it does.
 */
describe('HolderWatch', () => {
  let haveList: HaveList
  let connected: Set<string>
  let banned: Set<string>
  let watch: HolderWatch
  let lookups: number
  /** What the DHT lookup answers: none at once unless a test says otherwise. */
  let lookupAnswer: () => Promise<string[]>

  beforeEach(() => {
    vi.useFakeTimers()
    haveList = new HaveList()
    connected = new Set()
    banned = new Set()
    lookups = 0
    lookupAnswer = async () => []
    watch = new HolderWatch({
      haveList,
      isBanned: peer => banned.has(peer),
      connectedPeers: () => [...connected],
      interestedHere: () => true,
      searchProviders: async () => {
        lookups++
        return await lookupAnswer()
      },
    })
  })

  afterEach(() => { vi.useRealTimers() })

  /** A greeted neighbour: interested in the bundle or not, holding the object whole, some chunks, or nothing. */
  function neighbour (peer: string, init: { interested: boolean, holds?: true | number[] }): void {
    connected.add(peer)
    haveList.addPeer(peer, { gateway: false, bundles: init.interested ? [BUNDLE] : [] })
    if (init.holds === true) haveList.setObject(peer, OBJECT, true)
    else if (init.holds !== undefined) haveList.addChunks(peer, OBJECT, init.holds, () => new ChunkBitmap(4))
    watch.changed()
  }

  /** The verdict, or undefined while the watch still waits; the clock advanced by `ms` first. */
  async function after (verdict: Promise<NoHolder>, ms: number): Promise<NoHolder | undefined> {
    let got: NoHolder | undefined
    void verdict.then(v => { got = v })
    await vi.advanceTimersByTimeAsync(ms)
    return got
  }

  it('says so once the DHT named nobody, after a short settle, when no neighbour holds or wants the bundle', async () => {
    neighbour('gateway', { interested: false })
    const verdict = watch.untilNoHolder(BUNDLE, OBJECT, { signal: new AbortController().signal })
    expect(await after(verdict, NO_HOLDER_SETTLE_MS - 1)).toBeUndefined()
    expect((await after(verdict, 1))?.reason).toMatch(/1 neighbours do not hold the bundle, and a DHT lookup named 0 holders/)
    expect(lookups).toBe(1)
  })

  it('cuts a DHT lookup that does not answer at the search\'s bound', async () => {
    lookupAnswer = async () => await new Promise<string[]>(() => {})
    const verdict = watch.untilNoHolder(BUNDLE, OBJECT, { signal: new AbortController().signal })
    expect(await after(verdict, NO_HOLDER_SEARCH_MS - 1)).toBeUndefined()
    expect((await after(verdict, 1))?.reason).toMatch(/0 neighbours do not hold the bundle, and a DHT lookup named 0 holders in 750 ms/)
  })

  it('never says so while a connected peer holds a chunk, whatever another peer says', async () => {
    neighbour('honest', { interested: true, holds: [2] })
    neighbour('denier', { interested: false })
    const verdict = watch.untilNoHolder(BUNDLE, OBJECT, { signal: new AbortController().signal })
    expect(await after(verdict, 10 * SILENT_HOLDER_WAIT_MS)).toBeUndefined()
    // Its holder banned (a liar's chunk failed its check): a new search, then the verdict.
    banned.add('honest')
    watch.lost()
    expect(await after(verdict, NO_HOLDER_SETTLE_MS)).toBeDefined()
  })

  it('waits for a peer that wants the bundle and has said nothing of the object, up to its bound, then searches', async () => {
    neighbour('puller', { interested: true })
    const verdict = watch.untilNoHolder(BUNDLE, OBJECT, { signal: new AbortController().signal })
    expect(await after(verdict, SILENT_HOLDER_WAIT_MS + NO_HOLDER_SETTLE_MS - 1)).toBeUndefined()
    expect((await after(verdict, 1))?.reason).toMatch(/1 that may hold it said nothing of it/)
  })

  it('takes a peer whose state arrives during the wait for a holder, and asks the DHT nothing', async () => {
    neighbour('late', { interested: true })
    const verdict = watch.untilNoHolder(BUNDLE, OBJECT, { signal: new AbortController().signal })
    expect(await after(verdict, NO_HOLDER_SEARCH_MS)).toBeUndefined()
    haveList.setObject('late', OBJECT, true)
    watch.changed()
    expect(await after(verdict, 10 * SILENT_HOLDER_WAIT_MS)).toBeUndefined()
    expect(lookups).toBe(0)
  })

  it('counts a peer that served the bundle\'s description as a holder not yet heard from', async () => {
    neighbour('namer', { interested: false })
    watch.claimed(BUNDLE, 'namer')
    const verdict = watch.untilNoHolder(BUNDLE, OBJECT, { signal: new AbortController().signal })
    expect(await after(verdict, SILENT_HOLDER_WAIT_MS)).toBeUndefined()
    expect(await after(verdict, NO_HOLDER_SETTLE_MS)).toBeDefined()
  })

  it('rejects with the signal\'s reason when the caller leaves', async () => {
    neighbour('honest', { interested: true, holds: true })
    const left = new AbortController()
    const verdict = watch.untilNoHolder(BUNDLE, OBJECT, { signal: left.signal })
    left.abort(new Error('client left'))
    await expect(verdict).rejects.toThrow('client left')
  })
})
