import { parseArgs } from 'node:util'
import type { FlagSpec } from '../daemon/index.js'

/**
 * What each command takes, declared once: commander checks a command line against it before
 * the command runs ("did you mean", usage errors, `shoal CMD --help`), and the command reads
 * its arguments by the same spec (parseCommand).
 */
export interface CommandSpec {
  /** commander's argument syntax: `<PATH>`, `[DIR]`, `<ID...>`. */
  args: readonly string[]
  summary: string
  /** By long name, without the dashes. */
  options: Readonly<Record<string, FlagSpec>>
  examples: readonly string[]
}

const STORE_OPTION = { type: 'string', value: 'STORE', description: 'work on a store: a data dir, file://PATH, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX' } as const

export const COMMAND_SPECS = {
  push: {
    args: ['<PATH>'], summary: 'snapshot a directory or an image archive; prints the bundle ID (the snapdir ID too, on a terminal)',
    options: { ref: { type: 'string', multiple: true, value: '[LAYOUTREF=]NAME', description: 'tag the image (a fleet-wide tag when a daemon runs)' }, store: STORE_OPTION },
    examples: ['shoal push ./app-layout --ref registry.example.com/team/app:1.0', 'shoal push app.tar', 'shoal push --store file:///srv/snapshots ./tree'],
  },
  export: { args: ['<ID|REF>', '<DEST>'], summary: 'check out to DEST: a new directory, or FILE.tar as an oci-archive', options: {}, examples: ['shoal export registry.example.com/team/app:1.0 ./out', 'shoal export 3f2a… app.tar'] },
  verify: {
    args: ['[ID|REF]'], summary: 're-hash everything; names each bad object and the bundles it breaks',
    options: { store: STORE_OPTION, id: { type: 'string', value: 'ID', description: 'with --store: one snapshot' } }, examples: ['shoal verify', 'shoal verify --json | jq .bad'],
  },
  ls: { args: [], summary: 'list bundles: bundle ID, snapdir ID, size, completeness, refs', options: {}, examples: ['shoal ls', 'shoal ls --json'] },
  rm: { args: ['<ID|REF...>'], summary: 'remove bundles and free objects no other bundle uses', options: {}, examples: ['shoal rm registry.example.com/team/app:1.0'] },
  gc: { args: [], summary: 'remove objects, partial objects and index entries nothing uses', options: {}, examples: ['shoal gc'] },
  revisions: { args: ['[REF]'], summary: 'each ref\'s history of bundle IDs, with times', options: { store: STORE_OPTION }, examples: ['shoal revisions registry.example.com/team/app:1.0'] },
  manifest: { args: ['<DIR>'], summary: 'the snapdir manifest of DIR, byte for byte as snapdir prints it', options: {}, examples: ['shoal manifest ./tree > tree.manifest'] },
  id: { args: ['<DIR>'], summary: 'the snapdir ID of DIR (or the bundle ID a push would give)', options: { bundle: { type: 'boolean', description: 'print the bundle ID instead' } }, examples: ['shoal id ./tree', 'shoal id --bundle ./tree'] },
  sync: {
    args: [], summary: 'copy a snapshot between stores; only missing (or damaged) objects move',
    options: {
      id: { type: 'string', value: 'ID', description: 'the snapshot: a bundle ID, snapdir ID or ref' },
      from: { type: 'string', value: 'STORE', description: 'a data dir, file://PATH, s3://… or gs://…' },
      to: { type: 'string', value: 'STORE', description: 'the same kinds' },
    },
    examples: ['shoal sync --id 3f2a… --from ~/.local/share/shoal --to file:///mnt/backup'],
  },
  pull: {
    args: ['[ID|REF]', '[DIR]'], summary: 'fetch through the swarm with progress; check out to DIR',
    options: { store: STORE_OPTION, id: { type: 'string', value: 'ID', description: 'with --store: the snapshot to fetch' } }, examples: ['shoal pull registry.example.com/team/app:1.0', 'shoal pull 3f2a… ./out'],
  },
  peers: { args: [], summary: 'the peers the daemon sees', options: {}, examples: ['shoal peers'] },
  status: { args: [], summary: 'the daemon\'s peer ID, addresses, bundles and transfer totals', options: {}, examples: ['shoal status --json'] },
  preheat: {
    args: ['[REF|ID]'], summary: 'have matching nodes pull and pin a bundle in the background; alone: this node\'s preheats',
    options: {
      nodes: { type: 'string', value: 'SELECTOR', description: 'only nodes with these labels: KEY=VALUE[,KEY=VALUE…] (default: every node)' },
      platform: { type: 'string', value: 'OS/ARCH', description: 'fetch this platform of a multi-platform image (default: each node\'s own)' },
      cancel: { type: 'boolean', description: 'cancel the preheat: nodes stop pulling and unpin' },
    },
    examples: ['shoal preheat registry.example.com/team/app:1.0 --nodes arch=arm64,site=store-17', 'shoal preheat --cancel registry.example.com/team/app:1.0', 'shoal preheat --json'],
  },
  unpin: { args: ['<ID|REF>'], summary: 'let the quota evict a pinned (preheated) bundle on this node again', options: {}, examples: ['shoal unpin registry.example.com/team/app:1.0'] },
  fleet: { args: [], summary: 'every node of the fleet: labels, version, bundles held, free disk, last seen; per bundle N of M nodes complete', options: {}, examples: ['shoal fleet', 'shoal fleet --json | jq \'.nodes[] | select(.stale)\''] },
  keygen: { args: ['<swarm>', '<FILE>'], summary: 'a pre-shared key that closes a fleet to strangers', options: {}, examples: ['shoal keygen swarm /etc/shoal/swarm.key'] },
} as const satisfies Record<string, CommandSpec>

/**
 * `shoal daemon`'s options come from the settings schema (DAEMON_OPTIONS); the daemon module
 * (and libp2p with it) is loaded only when the daemon command is used, so other commands start quickly.
 */
export function daemonSpec (options: CommandSpec['options']): CommandSpec {
  return {
    args: [],
    summary: 'run the daemon: registry mirror, swarm, control API',
    options,
    examples: ['shoal daemon --gateway --allow-push', 'shoal daemon --bootstrap /ip4/10.0.0.1/tcp/4001/p2p/12D3KooW… --no-mdns', 'SHOAL_MAX_UPLOAD=10MB/s shoal daemon'],
  }
}

/**
 * A command's options and positionals, read by its spec. commander has checked the line
 * against the same spec already; this gives the command typed values (a `multiple` option an
 * array, a boolean a boolean).
 */
export function parseCommand<O extends CommandSpec['options']> (spec: { options: O }, args: string[]): ParsedCommand<O> {
  return parseArgs({ args, options: spec.options, allowPositionals: true, strict: true })
}

type ParsedCommand<O extends CommandSpec['options']> = ReturnType<typeof parseArgs<{ args: string[], options: O, allowPositionals: true, strict: true }>>
