export { ERROR_CATALOGUE, EXIT, type CatalogueEntry, type ErrorCode, type ExitCode, type RegistryCode } from './catalogue.js'
export { catalogueEntry, describeError, formatMessage, isErrorCode, registryCodeOf } from './describe.js'
export { CodedError } from './coded-error.js'
