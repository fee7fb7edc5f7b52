import { EXIT } from '../errors/index.js'

/** Exit codes, as `shoal --help` documents them; the catalogue (src/errors) gives each error code its own. */
export const EXIT_OK = EXIT.OK
/** The operation failed, or `verify` found a problem. */
export const EXIT_FAILURE = EXIT.FAILURE
/** The command line was wrong. */
export const EXIT_USAGE = EXIT.USAGE
/** A bundle, ref or manifest that was named does not exist. */
export const EXIT_NOT_FOUND = EXIT.NOT_FOUND
/** Interrupted (SIGINT/SIGTERM); nothing half-done was kept. */
export const EXIT_INTERRUPTED = EXIT.INTERRUPTED
