const SECRET_PREFIX = 'whsec_';

// Lenient like the Standard Webhooks libraries: padded or not, url-safe characters allowed.
const LENIENT_BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * The one rule for a Standard Webhooks secret: `whsec_` (optional) then base64 that decodes to at least
 * one byte. Returns which part a secret breaks, in words (never the secret), or undefined when it keys
 * the standard scheme. The tutorial's hex scheme, opt-in, takes any non-empty string instead.
 */
export function secretProblem(secret: string): string | undefined {
  const body = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (body === '') return secret === '' ? 'it is empty' : `nothing follows "${SECRET_PREFIX}"`;
  const stray = /[^A-Za-z0-9+/_=-]/.exec(body);
  if (stray !== null) {
    const at = stray.index + (body === secret ? 0 : SECRET_PREFIX.length) + 1;
    const what = /\s/.test(stray[0]) ? 'a space' : 'a character';
    return `${what} that is not base64 at position ${at}`;
  }
  if (!LENIENT_BASE64.test(body)) return '"=" padding appears before the end';
  if (Buffer.from(body, 'base64').length === 0) return 'its base64 decodes to no bytes';
  return undefined;
}

/** The HMAC key of a `whsec_<base64>` (or bare base64) secret; `undefined` when it is unusable. */
export function decodeSecret(secret: string): Buffer | undefined {
  if (secretProblem(secret) !== undefined) return undefined;
  const body = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  return Buffer.from(body, 'base64');
}
