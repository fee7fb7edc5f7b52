import type { SettingSpec } from '../daemon/index.js'

/**
 * What each command takes, for `shoal CMD --help`, "did you mean" and usage errors (commander
 * checks a command line against this before the command runs). The command itself reads its
 * arguments with parseArgs; test/cli/help.test.ts checks the two agree.
 */
export interface CommandSpec {
  name: string
  /** commander's argument syntax: `<PATH>`, `[DIR]`, `<ID...>`. */
  args: string[]
  summary: string
  options: Array<{ flags: string, description: string }>
  examples: string[]
}

const STORE_OPTION = { flags: '--store <STORE>', description: 'work on a store: a data dir, file://PATH, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX' }

export const COMMAND_SPECS: CommandSpec[] = [
  {
    name: 'push', args: ['<PATH>'], summary: 'snapshot a directory or an image archive; prints the bundle ID (the snapdir ID too, on a terminal)',
    options: [{ flags: '--ref <[LAYOUTREF=]NAME>', description: 'tag the image (a fleet-wide tag when a daemon runs)' }, STORE_OPTION],
    examples: ['shoal push ./app-layout --ref registry.example.com/team/app:1.0', 'shoal push app.tar', 'shoal push --store file:///srv/snapshots ./tree'],
  },
  { name: 'export', args: ['<ID|REF>', '<DEST>'], summary: 'check out to DEST: a new directory, or FILE.tar as an oci-archive', options: [], examples: ['shoal export registry.example.com/team/app:1.0 ./out', 'shoal export 3f2a… app.tar'] },
  {
    name: 'verify', args: ['[ID|REF]'], summary: 're-hash everything; names each bad object and the bundles it breaks',
    options: [STORE_OPTION, { flags: '--id <ID>', description: 'with --store: one snapshot' }], examples: ['shoal verify', 'shoal verify --json | jq .bad'],
  },
  { name: 'ls', args: [], summary: 'list bundles: bundle ID, snapdir ID, size, completeness, refs', options: [], examples: ['shoal ls', 'shoal ls --json'] },
  { name: 'rm', args: ['<ID|REF...>'], summary: 'remove bundles and free objects no other bundle uses', options: [], examples: ['shoal rm registry.example.com/team/app:1.0'] },
  { name: 'gc', args: [], summary: 'remove objects, partial objects and index entries nothing uses', options: [], examples: ['shoal gc'] },
  { name: 'revisions', args: ['[REF]'], summary: 'each ref\'s history of bundle IDs, with times', options: [STORE_OPTION], examples: ['shoal revisions registry.example.com/team/app:1.0'] },
  { name: 'manifest', args: ['<DIR>'], summary: 'the snapdir manifest of DIR, byte for byte as snapdir prints it', options: [], examples: ['shoal manifest ./tree > tree.manifest'] },
  { name: 'id', args: ['<DIR>'], summary: 'the snapdir ID of DIR (or the bundle ID a push would give)', options: [{ flags: '--bundle', description: 'print the bundle ID instead' }], examples: ['shoal id ./tree', 'shoal id --bundle ./tree'] },
  {
    name: 'sync', args: [], summary: 'copy a snapshot between stores; only missing (or damaged) objects move',
    options: [
      { flags: '--id <ID>', description: 'the snapshot: a bundle ID, snapdir ID or ref' },
      { flags: '--from <STORE>', description: 'a data dir, file://PATH, s3://… or gs://…' },
      { flags: '--to <STORE>', description: 'the same kinds' },
    ],
    examples: ['shoal sync --id 3f2a… --from ~/.local/share/shoal --to file:///mnt/backup'],
  },
  {
    name: 'pull', args: ['[ID|REF]', '[DIR]'], summary: 'fetch through the swarm with progress; check out to DIR',
    options: [STORE_OPTION, { flags: '--id <ID>', description: 'with --store: the snapshot to fetch' }], examples: ['shoal pull registry.example.com/team/app:1.0', 'shoal pull 3f2a… ./out'],
  },
  { name: 'peers', args: [], summary: 'the peers the daemon sees', options: [], examples: ['shoal peers'] },
  { name: 'status', args: [], summary: 'the daemon\'s peer ID, addresses, bundles and transfer totals', options: [], examples: ['shoal status --json'] },
  {
    name: 'preheat', args: ['[REF|ID]'], summary: 'have matching nodes pull and pin a bundle in the background; alone: this node\'s preheats',
    options: [
      { flags: '--nodes <SELECTOR>', description: 'only nodes with these labels: KEY=VALUE[,KEY=VALUE…] (default: every node)' },
      { flags: '--platform <OS/ARCH>', description: 'fetch this platform of a multi-platform image (default: each node\'s own)' },
      { flags: '--cancel', description: 'cancel the preheat: nodes stop pulling and unpin' },
    ],
    examples: ['shoal preheat registry.example.com/team/app:1.0 --nodes arch=arm64,site=store-17', 'shoal preheat --cancel registry.example.com/team/app:1.0', 'shoal preheat --json'],
  },
  { name: 'unpin', args: ['<ID|REF>'], summary: 'let the quota evict a pinned (preheated) bundle on this node again', options: [], examples: ['shoal unpin registry.example.com/team/app:1.0'] },
  { name: 'fleet', args: [], summary: 'every node of the fleet: labels, version, bundles held, free disk, last seen; per bundle N of M nodes complete', options: [], examples: ['shoal fleet', 'shoal fleet --json | jq \'.nodes[] | select(.stale)\''] },
  { name: 'keygen', args: ['<swarm>', '<FILE>'], summary: 'a pre-shared key that closes a fleet to strangers', options: [], examples: ['shoal keygen swarm /etc/shoal/swarm.key'] },
]

/**
 * `shoal daemon`'s options come from the settings schema; the daemon module (and libp2p with
 * it) is loaded only when the daemon command is used, so other commands start quickly.
 */
export function daemonSpec (settings: readonly SettingSpec[]): CommandSpec {
  return {
    name: 'daemon', args: [], summary: 'run the daemon: registry mirror, swarm, control API',
    options: [
      { flags: '--config <FILE>', description: 'a JSON config file with the keys below (default DATA/config.json)' },
      { flags: '--seed-from <STORE>', description: 'at start, copy snapshots from a store (s3://, gs://, file://) into this node' },
      { flags: '--seed-id <ID>', description: 'with --seed-from: only these snapshots (default: all)' },
      ...settings.filter(s => s.secret !== true && !['data', 'api', 'api-token-file'].includes(s.name)).flatMap(s => s.type === 'boolean'
        ? [{ flags: `--${s.name}`, description: s.description }, { flags: `--no-${s.name}`, description: `the opposite of --${s.name}` }]
        : [{ flags: `--${s.name} <${s.type === 'list' ? 'VALUE' : s.type.toUpperCase()}>`, description: s.description }]),
    ],
    examples: ['shoal daemon --gateway --allow-push', 'shoal daemon --bootstrap /ip4/10.0.0.1/tcp/4001/p2p/12D3KooW… --no-mdns', 'SHOAL_MAX_UPLOAD=10MB/s shoal daemon'],
  }
}
