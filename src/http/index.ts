// The http module's only import surface: the local HTTP API (DESIGN.md "The local HTTP API").
// The registry API (OCI distribution, pull and push) is built by createHttpApi; the JSON
// control API under /api/v1/ by createControlApi.
export { createHttpApi } from './http-api.js'
export type { BlobSource, HttpApi, HttpApiComponents, HttpApiInit, HttpLogger, PulledThroughImage, UpstreamManifest, UpstreamSource } from './types.js'
export { ERROR_CATALOGUE, RegistryError, type RegistryErrorCode, type ErrorBodyEntry } from './errors.js'
export { createControlApi, readStatus, type ControlApiComponents, type ControlApiInit } from './control-api.js'
export type { PeerInfo, PullEvent, PullProgress, StatusResponse, SwarmControl, SwarmStats } from './control-types.js'
export { createMetrics, Metrics, type MetricsSwarm, type MetricsSwarmEmitter } from './metrics.js'
export { createNodeHandler, type NodeHandlerComponents, type NodeHandlerInit } from './node-handler.js'
export { AccessPolicy, AccessDeniedError, parseNetworks, type AccessPolicyInit } from './access-policy.js'
export { AddressError, formatListenAddress, parseListenAddress, type ListenAddress } from './api-address.js'
export { closeListener, listenOn, type ListenerLogger } from './listener.js'
export { STATUS_PAGE_HTML } from './status-page.js'
