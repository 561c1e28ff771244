/**
 * The library's public API, published on npm as `inlet-webhooks` (the command it installs is `inlet`):
 * `import { verifyWebhook, signWebhook, createEmulator } from 'inlet-webhooks'`.
 */
export { createVerifier, signWebhook, verifyWebhook } from './verify/index.js';
export type {
  HeaderBag,
  SignatureErrorCode,
  SignedHeaders,
  SignOptions,
  Verifier,
  VerifyOptions,
  VerifyResult,
} from './verify/index.js';
export { createEmulator } from './emulator/index.js';
export type { EmulatorOptions, ReplicateEmulator } from './emulator/index.js';
export { ERROR_CODES } from './errors.js';
export type { ErrorCode } from './errors.js';
export { createInlet } from './library/index.js';
export type {
  CreateInletOptions,
  FetchHandler,
  Handler,
  HandlerContext,
  HandlerMessage,
  HandlerOptions,
  Inlet,
  NodeListener,
} from './library/index.js';
