// The body of a push's hashing thread (src/store/hash-worker.ts starts it). Plain JavaScript
// on purpose: a worker thread does not inherit tsx's loader (bin/shoal.js registers it with
// `register()`, which workers do not see), and this file must load the same way under tsx,
// vitest and a bare `node`.
//
// It computes sha256 of chunks that the main thread read into a SharedArrayBuffer, so that
// sha256 (node:crypto, ~1.9 GB/s on one core here) runs beside the main thread's BLAKE3
// instead of after it. Messages arrive in order, so a job's updates are hashed in file order.
//
//   in:  { type: 'start', job } | { type: 'update', job, slot, length } | { type: 'digest', job } | { type: 'drop', job }
//   out: { type: 'released', slot } after an update was hashed (the slot may be reused),
//        { type: 'digest', job, hex }, { type: 'dropped', job } (every earlier update was given back)
import { createHash } from 'node:crypto'
import { parentPort, workerData } from 'node:worker_threads'

/** @type {{ memory: SharedArrayBuffer, slotBytes: number }} */
const { memory, slotBytes } = workerData
/** @type {Map<number, import('node:crypto').Hash>} */
const jobs = new Map()

parentPort?.on('message', (message) => {
  switch (message.type) {
    case 'start':
      jobs.set(message.job, createHash('sha256'))
      break
    case 'update':
      // A dropped job's late updates still give their slot back.
      jobs.get(message.job)?.update(new Uint8Array(memory, message.slot * slotBytes, message.length))
      parentPort?.postMessage({ type: 'released', slot: message.slot })
      break
    case 'digest': {
      const hash = jobs.get(message.job)
      jobs.delete(message.job)
      parentPort?.postMessage({ type: 'digest', job: message.job, hex: hash?.digest('hex') })
      break
    }
    case 'drop':
      jobs.delete(message.job)
      parentPort?.postMessage({ type: 'dropped', job: message.job })
      break
    default:
      throw new Error(`hash thread: unknown message ${JSON.stringify(message)}`)
  }
})
