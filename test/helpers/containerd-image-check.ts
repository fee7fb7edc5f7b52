import { expect } from 'vitest'
import type { Containerd } from './containerd.js'

/**
 * `ctr images check` after a pull: every blob of `ref` present and the image unpacked, and,
 * given `layers`, one committed snapshot per layer (what containerd would run from).
 * `namespace`: where the image landed (`k8s.io` for a pull through the CRI).
 */
export async function expectCompleteAndUnpacked (ctd: Containerd, ref: string, { layers, namespace }: { layers?: number, namespace?: string } = {}): Promise<void> {
  const scope = namespace === undefined ? [] : ['-n', namespace]
  const check = await ctd.ctrOk([...scope, 'images', 'check'])
  const line = check.split('\n').find(l => l.startsWith(`${ref} `)) ?? ''
  expect(line, check).toMatch(/\bcomplete \((\d+)\/\1\)/)
  // The UNPACKED column; an image of no layers has nothing to unpack, and containerd 1.6 says false.
  if (layers !== 0) expect(line, check).toMatch(/\btrue\s*$/)
  if (layers === undefined) return
  const snapshots = (await ctd.ctrOk([...scope, 'snapshots', 'ls'])).trim().split('\n').slice(1)
  expect(snapshots.filter(s => /\bCommitted\b/.test(s)), snapshots.join('\n')).toHaveLength(layers)
}
