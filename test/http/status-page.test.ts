import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoalOk } from '../helpers/shoal-cli.js'

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))
const MIB = 1024 * 1024

// Debian's chromium package; `.ci/run` installs it. Without it there is no browser to drive.
describe.skipIf(!existsSync(CHROMIUM))('the status page in headless Chromium', () => {
  let work: string
  let gateway: DaemonProcess
  let edge: DaemonProcess
  let browser: Browser
  let bundleId: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-status-page-'))
    const images = await generateImages(join(work, 'images'), { baseBytes: 3 * MIB, seed: 9 })
    gateway = await startDaemonProcess(join(work, 'gateway'), ['--no-mdns', '--gateway'])
    bundleId = await shoalOk(undefined, ['--api', gateway.api, 'push', images.layouts.app1 ?? ''])
    edge = await startDaemonProcess(join(work, 'edge'), ['--no-mdns', '--bootstrap', gateway.address])
    const pulled = await edge.controlText('POST', '/api/v1/pull', { ref: bundleId })
    expect(pulled.text.trim().split('\n').at(-1)).toContain('"done"')
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    // Images, two daemons, a push, a pull and a browser start: 9 s alone, past 60 s once in a loaded suite.
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await edge?.kill()
    await gateway?.kill()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  it('shows the peer ID, the bundle with its ref and progress, and the peer it came from', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 720 } })
    const errors: string[] = []
    page.on('pageerror', err => { errors.push(err.message) })
    page.on('console', msg => { if (msg.type() === 'error') errors.push(msg.text()) })
    await page.goto(`http://${gateway.registry}/`)
    await page.getByText(bundleId).waitFor({ timeout: 10_000 })
    expect(await page.locator('#peer-id').textContent()).toBe(gateway.peerId)
    expect(await page.locator('#role').textContent()).toBe('gateway')
    const bundles = await page.locator('#bundles').innerText()
    expect(bundles).toContain('registry.example.com/shoal/app1:1.0')
    expect(bundles).toContain('complete')
    // The edge is listed among the peers with what the gateway sent it.
    const peerRow = page.locator('#peers tr', { hasText: edge.peerId.slice(0, 12) })
    await peerRow.waitFor({ timeout: 10_000 })
    expect(await peerRow.innerText()).toContain('connected')
    expect(Number(await page.locator('#peer-count').textContent())).toBe(1)
    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'status-page-gateway.png'), fullPage: true })

    // The edge's page: the same bundle, pulled, and the gateway marked as such.
    await page.goto(`http://${edge.registry}/`)
    await page.getByText(bundleId).waitFor({ timeout: 10_000 })
    expect(await page.locator('#peer-id').textContent()).toBe(edge.peerId)
    expect(await page.locator('#peers').innerText()).toContain('gateway')
    await page.screenshot({ path: join(ARTIFACTS, 'status-page-edge.png'), fullPage: true })
    expect(errors).toEqual([])
    await page.close()
  })

  it('keeps polling: a bundle pushed after the page loaded appears without a reload', async () => {
    const page = await browser.newPage()
    await page.goto(`http://${gateway.registry}/`)
    await page.getByText(bundleId).waitFor({ timeout: 10_000 })
    const images = await generateImages(join(work, 'images2'), { baseBytes: 1 * MIB, seed: 10 })
    const second = await shoalOk(undefined, ['--api', gateway.api, 'push', images.layouts.app2 ?? ''])
    await page.getByText(second).waitFor({ timeout: 5_000 })
    expect(await page.locator('#bundle-count').textContent()).toBe('2')
    await page.close()
  })
})
