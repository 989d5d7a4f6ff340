/** Tandem as a library: the TypeScript client. */
export { ClientErrorCode, TandemClient, TandemClientError, type ReadConsistency, type TandemClientOptions, type WriteAck, type WriteOutcome } from './client/client.js';
