export { bodyDeliveryKey } from './hmac.js';
export { hasSignatureHeaders } from './headers.js';
export { decodeSecret, secretProblem } from './secret.js';
export { messageIdProblem, newMessageId, signWebhook } from './sign-webhook.js';
export type { SignOptions } from './sign-webhook.js';
export { SIGNATURE_ERROR_CODES, SIGNATURE_SCHEMES } from './types.js';
export type {
  HeaderBag,
  SignatureErrorCode,
  SignatureScheme,
  SignedHeaders,
  VerifyOptions,
  VerifyResult,
} from './types.js';
export { createVerifier, verifyWebhook } from './verify-webhook.js';
export type { Verifier } from './verify-webhook.js';
