import { describe, expect, it } from 'vitest'
import { RecentMap, RecentSet } from '../../src/recent/index.js'

describe('RecentMap', () => {
  it('keeps exactly capacity entries, dropping the one set longest ago', () => {
    const map = new RecentMap<string, number>(3)
    for (const [i, key] of ['a', 'b', 'c'].entries()) map.set(key, i)
    expect([...map.keys()]).toEqual(['a', 'b', 'c'])
    map.set('d', 3)
    expect([...map.entries()]).toEqual([['b', 1], ['c', 2], ['d', 3]])
  })

  it('makes a key set again the newest, so another goes first', () => {
    const map = new RecentMap<string, number>(3)
    map.set('a', 0).set('b', 1).set('c', 2)
    map.set('a', 10)
    map.set('d', 3)
    expect([...map.entries()]).toEqual([['c', 2], ['a', 10], ['d', 3]])
  })

  it('does not refresh a key on read', () => {
    const map = new RecentMap<string, number>(2)
    map.set('a', 0).set('b', 1)
    expect(map.get('a')).toBe(0)
    expect(map.has('a')).toBe(true)
    map.set('c', 2)
    expect([...map.keys()]).toEqual(['b', 'c'])
  })

  it('drops nothing while a key set again keeps it at capacity', () => {
    const map = new RecentMap<string, number>(2)
    map.set('a', 0).set('b', 1).set('b', 2)
    expect([...map.entries()]).toEqual([['a', 0], ['b', 2]])
  })
})

describe('RecentSet', () => {
  it('keeps exactly capacity values, dropping the one added longest ago', () => {
    const set = new RecentSet<string>(2)
    set.add('a').add('b').add('a').add('c')
    expect([...set]).toEqual(['a', 'c'])
    set.add('d')
    expect([...set]).toEqual(['c', 'd'])
  })
})
