import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { StatusResponse } from '../../src/daemon/index.js'
import { startDaemonProcess } from '../helpers/daemon-process.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

/** The metrics text a URL `shoal status` printed answers with. */
async function scrape (url: string): Promise<string> {
  const response = await fetch(url)
  expect(response.status).toBe(200)
  return await response.text()
}

describe('shoal status', () => {
  const tempDir = useTempDirs()

  it('says where the registry mirror and the metrics listen, with or without --metrics, and both answer there', async () => {
    const dir = await tempDir()
    const shared = await startDaemonProcess(join(dir, 'shared'), ['--no-mdns', '--gateway'])
    const apart = await startDaemonProcess(join(dir, 'apart'), ['--no-mdns', '--gateway', '--metrics', '127.0.0.1:0'])
    try {
      // Without --metrics, /metrics rides on the registry's listener.
      const sharedText = (await shoal(shared.dataDir, ['status'])).stdout
      expect(sharedText).toContain(`registry mirror on http://${shared.registry}\n`)
      expect(sharedText).toContain(`metrics on http://${shared.registry}/metrics\n`)
      expect(await scrape(`http://${shared.registry}/metrics`)).toContain('shoal_')

      const apartStatus = JSON.parse(await shoalOk(apart.dataDir, ['--json', 'status'])) as StatusResponse
      expect(apartStatus.serving.registry).toBe(apart.registry)
      const metrics = apartStatus.serving.metrics
      expect(metrics).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(metrics).not.toBe(apart.registry)
      const apartText = (await shoal(apart.dataDir, ['status'])).stdout
      expect(apartText).toContain(`registry mirror on http://${apart.registry}\n`)
      expect(apartText).toContain(`metrics on http://${String(metrics)}/metrics\n`)
      expect(await scrape(`http://${String(metrics)}/metrics`)).toContain('shoal_')
    } finally {
      await apart.stop()
      await shared.stop()
    }
  })
})
