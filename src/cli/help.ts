export const HELP = `shoal — peer-to-peer distribution of container images across edge fleets

Usage: shoal [--data DIR] [--json] COMMAND [ARGS]

Store and snapshots (snapdir-compatible):
  push PATH [--ref [LAYOUTREF=]NAME]...  snapshot a directory or an image archive; prints the bundle ID
  export ID|REF DEST                       check out to DEST (a new directory, or FILE.tar as an oci-archive)
  verify [ID|REF]                          re-hash everything; names each bad object and the bundles it breaks
  ls                                       list bundles with size, completeness and refs
  rm ID|REF...                             remove bundles and free objects no other bundle uses
  gc                                       remove objects, partial objects and index entries nothing uses
  revisions [REF]                          each ref's history of bundle IDs, with times
  manifest DIR                             the snapdir manifest of DIR
  id [--bundle] DIR                        the snapdir ID of DIR (or the bundle ID a push would give)
  sync --id ID --from STORE --to STORE     copy a snapshot between stores; only missing objects move
  push --store STORE DIR                   a directory straight to a store; prints its snapdir ID
  pull --store STORE --id ID [DIR]         a snapshot from a store into the data dir (and out to DIR)
  verify --store STORE [--id ID]           re-hash a store's snapshots (all, or one)
  revisions --store STORE                  the snapshots a store holds, oldest first
     STORE: a data dir, file://PATH (snapdir's file store), s3://BUCKET/PREFIX or gs://BUCKET/PREFIX
     (snapdir-s3-store's keys). s3: credentials, region and endpoint as the AWS CLI reads them
     (AWS_* variables, ~/.aws/config and credentials; SNAPDIR_S3_STORE_ENDPOINT_URL too);
     gs: HMAC keys in GS_ACCESS_KEY_ID/GS_SECRET_ACCESS_KEY or ~/.boto

The fleet (a daemon per machine):
  daemon [--listen MA]... [--bootstrap MA]... [--no-mdns] [--gateway] [--swarm-key FILE]
         [--max-upload RATE] [--max-download RATE] [--quota SIZE] [--config FILE]
         [--upstream URL] [--allow-push] [--push-network CIDR]...
         [--registry HOST:PORT] [--metrics HOST:PORT] [--allowed-host NAME]...
         [--seed-from STORE [--seed-id ID]...]
         [--trust PEERID]... [--label KEY=VALUE]... [--log-level LEVEL]   (every setting: shoal daemon --help)
                                           run the daemon: the registry mirror on --registry
                                           (127.0.0.1:5050; with status page at /, /metrics and /healthz
                                           unless --metrics gives them their own address); the control
                                           API on --api (DATA/api.sock, mode 0660, group shoal; TCP only
                                           with --api-token-file); pushes (--allow-push) need the token
                                           or a client in --push-network (default: loopback)
                                           --upstream: pull misses through from that registry
                                           ($SHOAL_UPSTREAM_USER/$SHOAL_UPSTREAM_PASSWORD for its tokens)
                                           --seed-from: sync the store's snapshots (or the --seed-id
                                           ones) into this node and announce them, while it serves
  pull ID|REF [DIR]                        fetch through the swarm with progress; check out to DIR
  peers | status                           what the daemon sees (status --json: peer ID, labels, addresses, bundles)
  preheat REF|ID [--nodes SEL] [--platform OS/ARCH] [--cancel]
                                           matching nodes that trust this one pull the bundle in the
                                           background and pin it (SEL: arch=arm64,site=store-17);
                                           preheat alone: this node's preheats and their progress
  unpin ID|REF                             the quota may evict a pinned (preheated) bundle here again
  fleet                                    every node's signed status: labels, bundles, free disk,
                                           last seen (stale ones marked); N of M nodes per bundle
  keygen swarm FILE                        a pre-shared key that closes a fleet to strangers

Commands talk to the daemon when one runs (--api, $SHOAL_API, or the socket in the data
directory) and work on the store directly when none does.

Global options:
  --data DIR     the store (default $SHOAL_DATA, else ~/.local/share/shoal)
  --api ADDR     a running daemon's control API: a socket path, HOST:PORT or http://HOST:PORT
                 (default $SHOAL_API, else DATA/api.sock if a daemon answers there)
  --api-token-file FILE
                 the bearer token for a control API on TCP (default $SHOAL_API_TOKEN_FILE)
  --json         machine-readable output on stdout
  --help, -h     this text; shoal CMD --help (or shoal help CMD): a command's options and examples
  --version, -V  the version

Refs are full image names with their registry host: registry.example.com/team/app:1.0.
Progress bars appear on a terminal only; pipes get just the result.

Exit codes (errors print their code in brackets; with --json, {"error":{"code","message"}}):
  0    success
  1    the operation failed, or verify found a bad or missing object (every other code)
  2    usage error: USAGE, CONFIG_INVALID, SNAPSHOT_ID_INVALID, REF_INVALID, SWARM_INVALID_ID,
       SWARM_INVALID_KEY, SWARM_INVALID_PEER_KEY, ADDRESS_INVALID, API_ADDRESS_INVALID,
       TOKEN_REQUIRED, TOKEN_UNREADABLE, UPSTREAM_CONFIG_INVALID, STORE_URL_INVALID,
       BUCKET_CREDENTIALS_MISSING, LABEL_INVALID, SELECTOR_INVALID, PLATFORM_INVALID
  3    something named does not exist: BUNDLE_NOT_FOUND, SWARM_BUNDLE_NOT_FOUND, SWARM_NO_HOLDER,
       MANIFEST_NOT_FOUND, STORE_NOT_FOUND, UPSTREAM_NOT_FOUND, ENOENT, BUCKET_NOT_FOUND,
       BUCKET_KEY_NOT_FOUND
  130  interrupted by SIGINT/SIGTERM (INTERRUPTED); nothing half-done was kept
`
