/** Exit codes, as `shoal --help` documents them. */
export const EXIT_OK = 0
/** The operation failed, or `verify` found a problem. */
export const EXIT_FAILURE = 1
/** The command line was wrong. */
export const EXIT_USAGE = 2
/** A bundle, ref or manifest that was named does not exist. */
export const EXIT_NOT_FOUND = 3
/** Interrupted (SIGINT/SIGTERM); nothing half-done was kept. */
export const EXIT_INTERRUPTED = 130
