export { createBlake3, blake3Hex, blake3Backend, type Blake3Hasher } from './blake3.js'
export { createSha256, sha256Hex, type Sha256Hasher } from './sha256.js'
export { blake3File } from './file.js'

/** BLAKE3 hex digest of the empty input; a golden value from snapdir. */
export const EMPTY_BLAKE3_HEX = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
