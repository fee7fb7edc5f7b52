// The http module's only import surface: the local HTTP API (DESIGN.md "The local HTTP API").
// The registry API (OCI distribution, pull and push) is built by createHttpApi; the JSON
// control API under /api/v1/ by createControlApi.
export { createHttpApi } from './http-api.js'
export type { HttpApi, HttpApiComponents, HttpApiInit, HttpLogger } from './types.js'
export type { BlobSource, ContentSources, IncomingBlob, ResolvedTag } from './sources.js'
// For the daemon's content sources (pull-through and bundle making live there).
export { commitImage, heldBlob, imageBlobs, type ImageCommit } from './image-commit.js'
export { parseManifestDocument } from './manifest-document.js'
export { namespaceHeader } from './respond.js'
export { parseRepositoryName, parseDigest, imageRefOf, type RepositoryName, type Sha256Digest } from './names.js'
export { bundleHolding } from './object-lookup.js'
export { MAX_MANIFEST_BYTES } from './constants.js'
export { REGISTRY_ERRORS, RegistryError, type RegistryErrorCode, type ErrorBodyEntry } from './errors.js'
export { createControlApi } from './control-api.js'
export { readStatus } from './control-routes.js'
export type { ControlApiComponents, ControlApiInit, PeerInfo, PullEvent, PullProgress, StatusResponse, SwarmControl, SwarmStats, PreheatControl, PreheatRequest, PreheatIssued, PreheatState, PreheatStatus, ServingAddresses } from './control-types.js'
export { createMetrics, Metrics, type MetricsSwarm, type MetricsSwarmEmitter } from './metrics.js'
export { createNodeHandler, type NodeHandlerComponents, type NodeHandlerInit, type ReadinessReport } from './node-handler.js'
export { AccessPolicy, AccessDeniedError, parseNetworks, type AccessPolicyInit } from './access-policy.js'
export { AddressError, formatListenAddress, parseListenAddress, type AddressForms, type ListenAddress } from './api-address.js'
export { closeListener, createHttpServer, listenOn, type ListenerLogger } from './listener.js'
export { STATUS_PAGE_HTML } from './status-page.js'
export { summarizeFleet, FLEET_PAGE_ROWS, FLEET_TOP_BUNDLES, type FleetNodeInfo, type FleetBundleSpread, type FleetResponse, type FleetPreheat } from './fleet-view.js'
