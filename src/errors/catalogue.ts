/**
 * Every error code shoal reports, once: what it means (a message template), the HTTP status the
 * control and registry APIs answer with, and the CLI's exit code. Error classes stay in the
 * modules that throw them and keep their own messages; everything that turns an error into a
 * status or an exit code looks its `code` up here, so the three never disagree again.
 *
 * Templates name their parameters as `{name}`; `formatMessage` fills them.
 */

/** The CLI's exit codes, as `shoal --help` documents them. */
export const EXIT = {
  OK: 0,
  /** The operation failed, or `verify` found a problem. */
  FAILURE: 1,
  /** The command line or a setting was wrong. */
  USAGE: 2,
  /** Something that was named does not exist. */
  NOT_FOUND: 3,
  /** Interrupted (SIGINT/SIGTERM); nothing half-done was kept. */
  INTERRUPTED: 130,
} as const

export type ExitCode = typeof EXIT[keyof typeof EXIT]

/** The distribution-spec (and Docker) codes the registry API may answer with. */
export type RegistryCode =
  | 'BLOB_UNKNOWN' | 'BLOB_UPLOAD_INVALID' | 'BLOB_UPLOAD_UNKNOWN' | 'DIGEST_INVALID' | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID' | 'MANIFEST_UNKNOWN' | 'NAME_INVALID' | 'NAME_UNKNOWN' | 'SIZE_INVALID' | 'UNAUTHORIZED' | 'DENIED'
  | 'UNSUPPORTED' | 'TOOMANYREQUESTS' | 'RANGE_INVALID' | 'TAG_INVALID' | 'PAGINATION_NUMBER_INVALID' | 'NOT_FOUND'
  | 'UNAVAILABLE' | 'UNKNOWN'

export interface CatalogueEntry {
  status: number
  exit: ExitCode
  message: string
  /**
   * For shoal's own codes: the spec code the registry API answers with when such an error
   * reaches it (default UNKNOWN, a 500). Spec codes answer as themselves.
   */
  registry?: RegistryCode
  /** Where the code comes from: the distribution spec, Docker's registry, or shoal. */
  source: 'oci' | 'docker' | 'shoal'
}

const { FAILURE, USAGE, NOT_FOUND } = EXIT

export const ERROR_CATALOGUE = {
  // ── The registry API's codes: distribution-spec "Error Codes" (code-1 … code-14), then
  // Docker's where the spec is silent, then NOT_FOUND for paths outside the API. They answer
  // HTTP clients; the CLI never sees them but as a failure.
  BLOB_UNKNOWN: { status: 404, exit: FAILURE, message: 'blob unknown to registry', source: 'oci' },
  BLOB_UPLOAD_INVALID: { status: 400, exit: FAILURE, message: 'blob upload invalid', source: 'oci' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, exit: FAILURE, message: 'blob upload unknown to registry', source: 'oci' },
  DIGEST_INVALID: { status: 400, exit: FAILURE, message: 'provided digest did not match uploaded content', source: 'oci' },
  // distribution-spec "Pushing Manifests": a manifest naming an absent blob is refused with 400.
  MANIFEST_BLOB_UNKNOWN: { status: 400, exit: FAILURE, message: 'manifest references a manifest or blob unknown to registry', source: 'oci' },
  MANIFEST_INVALID: { status: 400, exit: FAILURE, message: 'manifest invalid', source: 'oci' },
  MANIFEST_UNKNOWN: { status: 404, exit: FAILURE, message: 'manifest unknown to registry', source: 'oci' },
  NAME_INVALID: { status: 400, exit: FAILURE, message: 'invalid repository name', source: 'oci' },
  NAME_UNKNOWN: { status: 404, exit: FAILURE, message: 'repository name not known to registry', source: 'oci' },
  SIZE_INVALID: { status: 400, exit: FAILURE, message: 'provided length did not match content length', source: 'oci' },
  UNAUTHORIZED: { status: 401, exit: FAILURE, message: 'authentication required', source: 'oci' },
  DENIED: { status: 403, exit: FAILURE, message: 'requested access to the resource is denied', source: 'oci' },
  UNSUPPORTED: { status: 405, exit: FAILURE, message: 'the operation is unsupported', source: 'oci' },
  TOOMANYREQUESTS: { status: 429, exit: FAILURE, message: 'too many requests', source: 'oci' },
  // distribution-spec: 416 Requested Range Not Satisfiable, for blob reads and out-of-order upload chunks.
  RANGE_INVALID: { status: 416, exit: FAILURE, message: 'invalid content range', source: 'docker' },
  TAG_INVALID: { status: 400, exit: FAILURE, message: 'invalid tag', source: 'docker' },
  PAGINATION_NUMBER_INVALID: { status: 400, exit: FAILURE, message: 'invalid number of results requested', source: 'docker' },
  NOT_FOUND: { status: 404, exit: FAILURE, message: 'not part of this API', source: 'shoal' },
  UNAVAILABLE: { status: 503, exit: FAILURE, message: 'service unavailable', source: 'docker' },
  UNKNOWN: { status: 500, exit: FAILURE, message: 'unknown error', source: 'docker' },

  // ── The command line and configuration.
  USAGE: { status: 400, exit: USAGE, message: 'the command line is wrong: {why}', source: 'shoal' },
  CONFIG_INVALID: { status: 400, exit: USAGE, message: 'setting {key} is invalid: {why}', source: 'shoal' },
  SNAPSHOT_ID_INVALID: { status: 400, exit: USAGE, message: '{id} is not a snapdir ID (64 lowercase hex digits)', source: 'shoal' },
  REF_INVALID: { status: 400, exit: USAGE, message: '{ref} is not a valid ref (an image name such as registry.example.com/app:1.0)', source: 'shoal' },
  SWARM_INVALID_ID: { status: 400, exit: USAGE, message: '{id} is not a 64-digit lowercase hex BLAKE3 id', source: 'shoal' },
  SWARM_INVALID_KEY: { status: 400, exit: USAGE, message: 'the swarm key is not a valid pre-shared key file', source: 'shoal' },
  SWARM_INVALID_PEER_KEY: { status: 400, exit: USAGE, message: 'the peer key is not a valid libp2p private key', source: 'shoal' },
  ADDRESS_INVALID: { status: 400, exit: USAGE, message: '{address} is not a listen address: {why}', source: 'shoal' },
  API_ADDRESS_INVALID: { status: 400, exit: USAGE, message: '{address} is not an API address (HOST:PORT, a URL, or a Unix socket path)', source: 'shoal' },
  TOKEN_REQUIRED: { status: 401, exit: USAGE, message: 'the control API over TCP needs the daemon\'s bearer token (--api-token-file)', source: 'shoal' },
  TOKEN_UNREADABLE: { status: 400, exit: USAGE, message: 'cannot read the API token file {path}', source: 'shoal' },
  UPSTREAM_CONFIG_INVALID: { status: 400, exit: USAGE, message: 'the upstream registry setting is invalid: {why}', source: 'shoal' },
  LABEL_INVALID: { status: 400, exit: USAGE, message: 'label {label} is not KEY=VALUE with a valid key and value', source: 'shoal' },
  SELECTOR_INVALID: { status: 400, exit: USAGE, message: 'selector {selector} is not KEY=VALUE[,KEY=VALUE…]', source: 'shoal' },
  PLATFORM_INVALID: { status: 400, exit: USAGE, message: 'platform {platform} is not OS/ARCH[/VARIANT]', source: 'shoal' },

  // ── Something named that is not there.
  BUNDLE_NOT_FOUND: { status: 404, exit: NOT_FOUND, message: 'no bundle or ref {ref} in this store', registry: 'MANIFEST_UNKNOWN', source: 'shoal' },
  SWARM_BUNDLE_NOT_FOUND: { status: 404, exit: NOT_FOUND, message: 'no peer provided bundle {id}', registry: 'MANIFEST_UNKNOWN', source: 'shoal' },
  SWARM_NO_HOLDER: { status: 404, exit: NOT_FOUND, message: 'the fleet has no holder of it: {why}', registry: 'BLOB_UNKNOWN', source: 'shoal' },
  MANIFEST_NOT_FOUND: { status: 404, exit: NOT_FOUND, message: 'no manifest {id} in file store {root}', source: 'shoal' },
  STORE_NOT_FOUND: { status: 404, exit: NOT_FOUND, message: 'there is no shoal store at {dir}', source: 'shoal' },
  UPSTREAM_NOT_FOUND: { status: 404, exit: NOT_FOUND, message: 'the upstream registry does not have {what}', source: 'shoal' },
  ENOENT: { status: 404, exit: NOT_FOUND, message: 'no such file or directory: {path}', source: 'shoal' },

  // ── Input that was refused (a tree, a manifest, an image, an archive).
  MANIFEST_UNSAFE_PATH: { status: 422, exit: FAILURE, message: 'refusing path {path}: {why}', source: 'shoal' },
  MANIFEST_DUPLICATE_PATH: { status: 422, exit: FAILURE, message: 'path {path} appears twice in the manifest', source: 'shoal' },
  MANIFEST_SYNTAX: { status: 422, exit: FAILURE, message: 'manifest line {line}: {why}', source: 'shoal' },
  MANIFEST_TOO_LARGE: { status: 413, exit: FAILURE, message: 'manifest has more than {limit} {what}', source: 'shoal' },
  MANIFEST_SYMLINK_ESCAPES: { status: 422, exit: FAILURE, message: 'symlink {path} points outside the tree', source: 'shoal' },
  MANIFEST_SYMLINK_LOOP: { status: 422, exit: FAILURE, message: '{path} links back to one of its own parent directories', source: 'shoal' },
  BUNDLE_MANIFEST_INVALID: { status: 422, exit: FAILURE, message: 'invalid bundle manifest: {why}', source: 'shoal' },
  PUSH_UNSUPPORTED: { status: 415, exit: FAILURE, message: '{path} is neither a directory nor an archive file', source: 'shoal' },
  OCI_INVALID_LAYOUT: { status: 422, exit: FAILURE, message: 'not a valid OCI image layout: {why}', source: 'shoal' },
  OCI_INVALID_INDEX: { status: 422, exit: FAILURE, message: 'invalid OCI index: {why}', source: 'shoal' },
  OCI_INVALID_MANIFEST: { status: 422, exit: FAILURE, message: 'invalid OCI manifest: {why}', source: 'shoal' },
  OCI_UNSUPPORTED_DIGEST: { status: 422, exit: FAILURE, message: 'digest algorithm of {digest} is not supported', source: 'shoal' },
  OCI_BLOB_MISSING: { status: 422, exit: FAILURE, message: 'blob {digest} named by the image is missing', source: 'shoal' },
  OCI_BLOB_SIZE_MISMATCH: { status: 422, exit: FAILURE, message: 'blob {digest} has another size than its descriptor says', source: 'shoal' },
  OCI_BLOB_DIGEST_MISMATCH: { status: 422, exit: FAILURE, message: 'blob {digest} does not hash to its name', source: 'shoal' },
  ARCHIVE_TRUNCATED: { status: 422, exit: FAILURE, message: 'the archive is truncated', source: 'shoal' },
  ARCHIVE_CORRUPT: { status: 422, exit: FAILURE, message: 'the archive is corrupt: {why}', source: 'shoal' },
  ARCHIVE_UNSAFE_PATH: { status: 422, exit: FAILURE, message: 'the archive holds an unsafe path {path}', source: 'shoal' },
  ARCHIVE_UNSUPPORTED: { status: 422, exit: FAILURE, message: 'the archive holds an unsupported entry {path}', source: 'shoal' },
  ARCHIVE_ENTRY_SIZE_MISMATCH: { status: 500, exit: FAILURE, message: 'archive entry {path} has another size than announced', source: 'shoal' },
  ARCHIVE_DUPLICATE_ENTRY: { status: 422, exit: FAILURE, message: 'the archive names {path} twice', source: 'shoal' },
  ARCHIVE_DEST_NOT_EMPTY: { status: 409, exit: FAILURE, message: '{path} is not empty', source: 'shoal' },
  ARCHIVE_TOO_LARGE: { status: 413, exit: FAILURE, message: 'the tree holds more than {limit} bytes, more than this store takes', source: 'shoal' },
  BLOB_DIGEST_MISMATCH: { status: 400, exit: FAILURE, message: 'the uploaded bytes hash to {actual}, not {expected}', registry: 'DIGEST_INVALID', source: 'shoal' },
  REF_RECORD_INVALID: { status: 422, exit: FAILURE, message: 'ref record refused: {why}', source: 'shoal' },
  PREHEAT_RECORD_INVALID: { status: 422, exit: FAILURE, message: 'preheat record refused: {why}', source: 'shoal' },
  STATUS_RECORD_INVALID: { status: 422, exit: FAILURE, message: 'node status refused: {why}', source: 'shoal' },
  PREHEAT_LIMIT: { status: 409, exit: FAILURE, message: 'this node keeps at most {max} live preheat records', source: 'shoal' },

  // ── The store.
  BUNDLE_INCOMPLETE: { status: 409, exit: FAILURE, message: 'bundle {id} lacks {missing} object(s) here', source: 'shoal' },
  DESTINATION_EXISTS: { status: 409, exit: FAILURE, message: '{path} exists and is not empty', source: 'shoal' },
  STORE_LOCKED: { status: 409, exit: FAILURE, message: 'the store at {dir} is in use by another process', source: 'shoal' },
  STORE_CLOSING: { status: 503, exit: FAILURE, message: 'the store is closing; {what} were not written', registry: 'UNAVAILABLE', source: 'shoal' },
  OVER_QUOTA: { status: 507, exit: FAILURE, message: '{what} needs {needed} bytes, more than this node\'s quota of {quota} bytes', registry: 'DENIED', source: 'shoal' },
  DISK_FULL: { status: 507, exit: FAILURE, message: 'no space left for {path}', registry: 'UNAVAILABLE', source: 'shoal' },
  OBJECT_CORRUPT: { status: 500, exit: FAILURE, message: 'object {hash} is damaged', source: 'shoal' },
  OBJECT_UNKNOWN: { status: 404, exit: FAILURE, message: 'object {hash} is not part of any bundle here', source: 'shoal' },
  OBJECT_MISSING: { status: 409, exit: FAILURE, message: 'object {hash} is not in the store', source: 'shoal' },
  CHUNK_NOT_PRESENT: { status: 404, exit: FAILURE, message: 'chunk {index} of object {hash} is not here', source: 'shoal' },
  CHUNK_HASH_MISMATCH: { status: 502, exit: FAILURE, message: 'chunk {index} of object {hash} failed verification', source: 'shoal' },
  OBJECT_DISCARDED: { status: 409, exit: FAILURE, message: 'object {hash} was removed (gc) while chunks of it were being written', source: 'shoal' },
  MANIFEST_CORRUPT: { status: 500, exit: FAILURE, message: 'manifest {id} in {root} is damaged', source: 'shoal' },

  // ── Peers and the upstream (data from elsewhere that failed, or nobody answering).
  BUNDLE_NOT_WANTED: { status: 502, exit: FAILURE, message: 'the bundle {bundleId} a peer named for a tag does not hold that tag\'s manifest: its pull was stopped before any chunk was asked for', registry: 'MANIFEST_UNKNOWN', source: 'shoal' },
  BUNDLE_ID_MISMATCH: { status: 502, exit: FAILURE, message: 'bundle manifest hashes to {actual}, not {expected}', source: 'shoal' },
  SWARM_BAD_DATA: { status: 502, exit: FAILURE, message: 'a peer sent data that failed verification: {why}', source: 'shoal' },
  SWARM_PROTOCOL_VIOLATION: { status: 502, exit: FAILURE, message: 'a peer broke the protocol: {why}', source: 'shoal' },
  SWARM_MESSAGE_TOO_LARGE: { status: 502, exit: FAILURE, message: 'a peer sent a message over {limit} bytes', source: 'shoal' },
  SWARM_MESSAGE_TIMEOUT: { status: 504, exit: FAILURE, message: 'a peer did not answer within {ms} ms', source: 'shoal' },
  SWARM_IDLE_STREAM: { status: 504, exit: FAILURE, message: 'a peer opened a stream and sent nothing within {ms} ms', source: 'shoal' },
  SWARM_SLOW_READER: { status: 504, exit: FAILURE, message: 'a peer did not read a chunk it asked for within {ms} ms', source: 'shoal' },
  SWARM_CONNECTION_PING_TIMEOUT: { status: 504, exit: FAILURE, message: 'a peer did not answer a ping within {ms} ms; the connection was closed', source: 'shoal' },
  SWARM_LANE_CLOSED: { status: 502, exit: FAILURE, message: 'a data lane to a peer closed or could not open: {why} (its chunks go over libp2p)', source: 'shoal' },
  SWARM_OBJECT_STREAM_STALLED: { status: 504, exit: FAILURE, message: 'an object lane brought no whole chunk within {ms} ms; the rest of the object is asked for chunk by chunk', source: 'shoal' },
  SWARM_BATCH_NOT_TAKEN: { status: 502, exit: FAILURE, message: 'a neighbour did not take a batch sent to it: the stream ended {status}', source: 'shoal' },
  SWARM_NOT_STARTED: { status: 503, exit: FAILURE, message: 'the swarm is not running', registry: 'UNAVAILABLE', source: 'shoal' },
  SOURCE_INCOMPLETE: { status: 503, exit: FAILURE, message: 'the object stopped arriving before it was complete', registry: 'UNAVAILABLE', source: 'shoal' },
  FLEET_BLOB_FAILED: { status: 502, exit: FAILURE, message: 'the pull-through node stopped streaming the blob: {why}', registry: 'UNAVAILABLE', source: 'shoal' },
  FLEET_BLOB_REJECTED: { status: 502, exit: FAILURE, message: 'a blob streamed from the fleet was refused: {why}', registry: 'UNAVAILABLE', source: 'shoal' },
  GROWING_FILE_FAILED: { status: 502, exit: FAILURE, message: 'the blob being downloaded here failed: {why}', registry: 'UNAVAILABLE', source: 'shoal' },
  UPSTREAM_UNAVAILABLE: { status: 503, exit: FAILURE, message: 'the upstream registry failed: {why}', registry: 'UNAVAILABLE', source: 'shoal' },
  UPSTREAM_UNAUTHORIZED: { status: 502, exit: FAILURE, message: 'the upstream registry refused the credentials', registry: 'UNAVAILABLE', source: 'shoal' },
  UPSTREAM_TOO_LARGE: { status: 502, exit: FAILURE, message: 'the upstream sent more than {limit} bytes', registry: 'UNAVAILABLE', source: 'shoal' },
  UPSTREAM_DIGEST_MISMATCH: { status: 502, exit: FAILURE, message: 'the upstream sent bytes that do not hash to {digest}', registry: 'UNAVAILABLE', source: 'shoal' },
  UPSTREAM_MANIFEST_INVALID: { status: 502, exit: FAILURE, message: 'the upstream sent an invalid manifest: {why}', registry: 'UNAVAILABLE', source: 'shoal' },

  // ── Object-storage stores (s3://, gs://): what the bucket's service answered.
  STORE_URL_INVALID: { status: 400, exit: USAGE, message: '{spec} is not a store URL (s3://BUCKET/PREFIX, gs://BUCKET/PREFIX)', source: 'shoal' },
  BUCKET_CREDENTIALS_MISSING: { status: 400, exit: USAGE, message: 'no credentials for {scheme}:// stores: {what}', source: 'shoal' },
  BUCKET_NOT_FOUND: { status: 404, exit: NOT_FOUND, message: 'bucket {bucket} does not exist at {endpoint}', source: 'shoal' },
  BUCKET_KEY_NOT_FOUND: { status: 404, exit: NOT_FOUND, message: '{url} does not exist', source: 'shoal' },
  BUCKET_CREDENTIALS_REJECTED: { status: 502, exit: FAILURE, message: '{endpoint} rejected the credentials from {source}', registry: 'UNAVAILABLE', source: 'shoal' },
  BUCKET_CREDENTIALS_EXPIRED: { status: 502, exit: FAILURE, message: 'the credentials from {source} have expired', registry: 'UNAVAILABLE', source: 'shoal' },
  BUCKET_ACCESS_DENIED: { status: 502, exit: FAILURE, message: 'access to {url} denied to the credentials from {source}', registry: 'UNAVAILABLE', source: 'shoal' },
  BUCKET_UPLOAD_NOT_FOUND: { status: 502, exit: FAILURE, message: 'the multipart upload to {url} is gone', registry: 'UNAVAILABLE', source: 'shoal' },
  BUCKET_THROTTLED: { status: 503, exit: FAILURE, message: '{endpoint} still throttled {what} {url} after {attempts} attempts', registry: 'UNAVAILABLE', source: 'shoal' },
  BUCKET_ENDPOINT_FAILED: { status: 502, exit: FAILURE, message: '{endpoint} kept failing {what} {url}', registry: 'UNAVAILABLE', source: 'shoal' },
  BUCKET_BAD_RESPONSE: { status: 502, exit: FAILURE, message: '{endpoint} answered {what} {url} with something S3 does not send', registry: 'UNAVAILABLE', source: 'shoal' },

  // ── Who may ask: the listeners' access policy (the status is what the listener answers).
  TOKEN_INVALID: { status: 401, exit: FAILURE, message: 'the bearer token does not match the daemon\'s token file', registry: 'UNAUTHORIZED', source: 'shoal' },
  PUSH_UNAUTHORIZED: { status: 401, exit: FAILURE, message: 'registry pushes here need the token or an allowed network', registry: 'UNAUTHORIZED', source: 'shoal' },
  HOST_REFUSED: { status: 403, exit: FAILURE, message: 'the Host header {host} is not this daemon\'s', registry: 'DENIED', source: 'shoal' },
  ORIGIN_REFUSED: { status: 403, exit: FAILURE, message: 'requests from web pages ({origin}) are refused', registry: 'DENIED', source: 'shoal' },
  CONTENT_TYPE_REFUSED: { status: 415, exit: FAILURE, message: 'control requests must be application/json (or application/x-tar for a push)', source: 'shoal' },
  PATH_NOT_ACCEPTED: { status: 400, exit: FAILURE, message: 'the control API takes no paths ({route}): the CLI streams what it pushes and writes what it receives', source: 'shoal' },

  // ── The control API and the CLI's side of it.
  BODY_INVALID: { status: 400, exit: FAILURE, message: 'the request body is invalid: {why}', source: 'shoal' },
  BODY_TOO_LARGE: { status: 413, exit: FAILURE, message: 'control requests are at most {limit} bytes', source: 'shoal' },
  PULL_FAILED: { status: 500, exit: FAILURE, message: 'the pull failed: {why}', source: 'shoal' },
  PULL_INTERRUPTED: { status: 503, exit: FAILURE, message: 'the daemon closed the pull before it finished', source: 'shoal' },
  DAEMON_UNREACHABLE: { status: 503, exit: FAILURE, message: 'no daemon answers at {api}', source: 'shoal' },
  DAEMON_CONNECTION_LOST: { status: 502, exit: FAILURE, message: 'the daemon at {api} closed the connection before its answer was read ({why})', source: 'shoal' },
  DAEMON_ERROR: { status: 502, exit: FAILURE, message: 'the daemon answered {status}', source: 'shoal' },
  REQUEST_TIMEOUT: { status: 504, exit: FAILURE, message: '{what}: nothing happened for {ms} ms', registry: 'UNAVAILABLE', source: 'shoal' },
  CLIENT_GONE: { status: 499, exit: FAILURE, message: 'the client closed the connection', source: 'shoal' },
  INTERNAL: { status: 500, exit: FAILURE, message: 'internal error: {why}', source: 'shoal' },
  // A daemon's listener (libp2p, the registry mirror, metrics, the control API) found its address taken.
  EADDRINUSE: { status: 500, exit: FAILURE, message: '{listener} cannot listen on {address}: the address is in use', source: 'shoal' },
  // The CLI was stopped by SIGINT/SIGTERM; 499 is what proxies log for a client that left.
  INTERRUPTED: { status: 499, exit: EXIT.INTERRUPTED, message: 'interrupted; nothing half-done was kept', source: 'shoal' },
} as const satisfies Record<string, CatalogueEntry>

export type ErrorCode = keyof typeof ERROR_CATALOGUE
