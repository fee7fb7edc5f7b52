import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { isBucketUrl } from '../bucket/index.js'
import { BucketStore } from './bucket-store.js'
import { FileStore } from './file-store.js'
import { Store } from './store.js'
import type { SyncEndpoint } from './sync.js'

export interface OpenedEndpoint {
  endpoint: SyncEndpoint
  /** How the store is named in messages: the URL, or the data dir's path. */
  name: string
  close: () => Promise<void>
}

export interface EndpointInit {
  /** Where credentials and endpoints of buckets are read from (the AWS CLI's variables). */
  env: NodeJS.ProcessEnv
  /** Unfinished multipart uploads; default `defaultUploadJournalDir(env)`. */
  journalDir?: string
  /** For a data dir: create it when missing (a destination), or refuse (a source). */
  create?: boolean
  signal?: AbortSignal
}

/**
 * A store named on a command line: `s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`, `file://PATH`
 * (snapdir's file-store layout), or else a shoal data directory.
 */
export async function openEndpoint (spec: string, init: EndpointInit): Promise<OpenedEndpoint> {
  if (isBucketUrl(spec)) {
    const store = await BucketStore.open(spec, init.env, { journalDir: init.journalDir ?? defaultUploadJournalDir(init.env), signal: init.signal })
    return { endpoint: { kind: 'bucket', store }, name: store.url, close: async () => { store.close() } }
  }
  if (spec.startsWith('file://')) {
    const store = new FileStore(resolve(spec.slice('file://'.length)))
    return { endpoint: { kind: 'file', store }, name: store.url, close: async () => {} }
  }
  const store = await Store.open({ dir: spec, signal: init.signal, create: init.create })
  return { endpoint: { kind: 'shoal', store }, name: spec, close: async () => { await store.close() } }
}

/** `$XDG_STATE_HOME/shoal/bucket-uploads`: state that outlives a run but is not the store. */
export function defaultUploadJournalDir (env: NodeJS.ProcessEnv): string {
  const stateHome = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : join(env.HOME ?? homedir(), '.local', 'state')
  return join(stateHome, 'shoal', 'bucket-uploads')
}
