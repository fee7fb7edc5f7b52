/**
 * Attempts per request before a throttled or failing endpoint is reported. S3 asks clients to
 * back off on 503 SlowDown and retry; with the backoff below, 8 attempts wait ~25 s in total,
 * long enough to ride out a short outage, short enough that a dead endpoint is named soon.
 */
export const REQUEST_ATTEMPTS = 8
/** First backoff; doubles per attempt, with full jitter (AWS's "exponential backoff and jitter"). */
export const RETRY_BASE_MS = 200
export const RETRY_MAX_MS = 8000
/** A request whose socket is idle this long is aborted and retried. */
export const REQUEST_IDLE_TIMEOUT_MS = 60_000
/** Error bodies and listings are small XML documents; anything larger is not an S3 answer. */
export const MAX_XML_RESPONSE_BYTES = 8 * 1024 * 1024
/** Sockets per endpoint: the sync's own limits keep fewer requests than this in flight. */
export const MAX_SOCKETS = 32
/** Keys per listing page (S3's maximum). */
export const LIST_PAGE_KEYS = 1000
/** Google Cloud Storage's XML API, which speaks S3's protocol with HMAC keys. */
export const GCS_XML_ENDPOINT = 'https://storage.googleapis.com'
