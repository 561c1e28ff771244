import type { ErrorCode } from '../errors.js';

/** Request headers with lower-case names, as node's `IncomingHttpHeaders`. */
export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

/** The signature rows of CONTRACT §3, in the order they are checked. */
export const SIGNATURE_ERROR_CODES = [
  'missing_signature',
  'malformed_signature',
  'timestamp_out_of_tolerance',
  'invalid_signature',
] as const satisfies readonly ErrorCode[];

export type SignatureErrorCode = (typeof SIGNATURE_ERROR_CODES)[number];

export const SIGNATURE_SCHEMES = ['standard', 'hex'] as const;
export type SignatureScheme = (typeof SIGNATURE_SCHEMES)[number];

export interface VerifyOptions {
  /** `whsec_<base64>` (bare base64 is accepted too); several at once during rotation. */
  readonly secrets: readonly string[];
  /** Allowed skew of `webhook-timestamp` in both directions; 0 turns the clock check off. */
  readonly toleranceSec: number;
  /** Also accept the tutorial's `X-Replicate-Signature` hex scheme. */
  readonly acceptHex?: boolean;
  /** Current Unix time in seconds; defaults to the system clock. */
  readonly nowSec?: () => number;
}

export type VerifyResult =
  | { readonly ok: true; readonly scheme: 'standard'; readonly key: string; readonly timestampSec: number }
  | { readonly ok: true; readonly scheme: 'hex'; readonly key: string; readonly timestampSec: null }
  | { readonly ok: false; readonly code: SignatureErrorCode; readonly message: string };

// A type alias, not an interface, so it is assignable to HeaderBag.
export type SignedHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};
