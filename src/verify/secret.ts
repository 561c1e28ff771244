export const SECRET_PREFIX = 'whsec_';

// Lenient like the Standard Webhooks libraries: padded or not, url-safe characters allowed.
const LENIENT_BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** The HMAC key of a `whsec_<base64>` (or bare base64) secret; `undefined` when it is unusable. */
export function decodeSecret(secret: string): Buffer | undefined {
  const body = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!LENIENT_BASE64.test(body)) return undefined;
  const key = Buffer.from(body, 'base64');
  return key.length === 0 ? undefined : key;
}
