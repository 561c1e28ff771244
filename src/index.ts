export { signWebhook, verifyWebhook } from './verify/index.js';
export type {
  HeaderBag,
  SignatureErrorCode,
  SignedHeaders,
  SignOptions,
  VerifyOptions,
  VerifyResult,
} from './verify/index.js';
