import type { SwarmStore } from './swarm-options.js'

/**
 * The same store with its chunk reads replaced (a lying or slow disk): for fault tests and the
 * daemon's byzantine mode, which speak the real protocol over a real store.
 */
export function withReadChunk (store: SwarmStore, readChunk: SwarmStore['readChunk']): SwarmStore {
  return {
    getBundle: async id => await store.getBundle(id),
    getEncodedBundle: async id => await store.getEncodedBundle(id),
    addBundle: async (encoded, options) => await store.addBundle(encoded, options),
    requireRoomForBundle: async (id, options) => { await store.requireRoomForBundle(id, options) },
    bundleIds: async () => await store.bundleIds(),
    objectState: async hash => await store.objectState(hash),
    readChunk,
    writeChunk: async (...args) => await store.writeChunk(...args),
    acceptRefRecord: async (update, bounds) => await store.acceptRefRecord(update, bounds),
    refRecords: async () => await store.refRecords(),
    on: (event, listener) => { store.on(event, listener) },
    off: (event, listener) => { store.off(event, listener) },
  }
}
