/** Plain words for each rejection code: what most likely happened, and what fixes it (docs/errors.md). */

export interface Explanation {
  title: string;
  cause: string;
  fix: string;
}

const EXPLANATIONS: Record<string, Explanation> = {
  timestamp_out_of_tolerance: {
    title: 'Clock skew',
    cause:
      "The delivery's webhook-timestamp is more than the tolerance (5 minutes by default) away from this machine's clock. Replicate's retries carry fresh timestamps, so the clock here is usually the one that is wrong — or an old delivery was replayed.",
    fix: 'Sync the clock (NTP). To replay old captured deliveries, run serve with `--tolerance 0`.',
  },
  invalid_signature: {
    title: 'Wrong or rotated secret, or a changed body',
    cause:
      'No signature matched a configured secret. Either the secret is not the one Replicate signs with (another account, or it was rotated), or something between Replicate and Inlet re-serialised the JSON body (a proxy or middleware that parses and rewrites it), which breaks the signature.',
    fix: 'Fetch the secret again (`GET /v1/webhooks/default/secret`) and set the whole `whsec_…` value as `REPLICATE_WEBHOOK_SECRET`; while rotating, give both (`"whsec_new whsec_old"`). Put nothing that rewrites bodies in front of Inlet; `inlet verify` checks one delivery offline.',
  },
  missing_signature: {
    title: 'Missing signature headers',
    cause:
      'The webhook-id, webhook-timestamp and webhook-signature headers did not all arrive. A proxy that strips unknown headers, or a tool that sends only a body, causes this.',
    fix: 'Let the proxy pass the webhook-* headers through; send test deliveries with `inlet sign` or `inlet trigger`.',
  },
  malformed_signature: {
    title: 'Malformed timestamp',
    cause: 'The webhook-timestamp header is not a whole number of Unix seconds.',
    fix: 'Send the timestamp as Unix seconds, as Standard Webhooks does.',
  },
  payload_too_large: {
    title: 'Body too large',
    cause:
      'The body is over `--max-body` (16 MiB by default). Webhook bodies carry the full logs and any data-URI inputs, so they can be large.',
    fix: 'Raise `--max-body` / `INLET_MAX_BODY_BYTES`, and any limit of a proxy in front (nginx `client_max_body_size` is 1 MiB by default).',
  },
  unsupported_media_type: {
    title: 'Wrong content type',
    cause: 'The Content-Type header is present and is not JSON (application/json or */*+json).',
    fix: 'Send application/json, or no Content-Type at all; check that a proxy does not rewrite it.',
  },
  invalid_json: {
    title: 'Not a JSON object',
    cause: 'The signed body is not valid UTF-8 JSON, or not a JSON object. The sender has a bug.',
    fix: 'Look at the body below (it is kept whole) and fix the sender.',
  },
  invalid_payload: {
    title: 'Not a prediction',
    cause:
      'The JSON object has no non-empty string "id" and "status", so it is not a Replicate prediction or training.',
    fix: 'Look at the body below (it is kept whole) and fix the sender.',
  },
  method_not_allowed: {
    title: 'Not a POST',
    cause: 'The webhook path got a request other than POST (a browser or a health check visiting it, say).',
    fix: 'Deliver webhooks with POST; point health checks at /healthz.',
  },
  not_found: {
    title: 'Wrong URL',
    cause:
      'A POST arrived at a path where Inlet does not receive webhooks: a typo, a prefix added by a proxy, or a doubled slash. The message says which path was meant when it is close.',
    fix: 'Give Replicate the exact webhook URL (no redirects: Replicate does not follow them).',
  },
  bad_request: {
    title: 'Unreadable request',
    cause:
      'The request could not be read as sent: a body shorter than its Content-Length, a broken connection, or a URL that does not decode.',
    fix: 'Fix the client, or the proxy in front, that sends it.',
  },
};

export function explain(code: string): Explanation {
  return (
    EXPLANATIONS[code] ?? {
      title: code,
      cause: 'Inlet refused this request; the message says why.',
      fix: 'See docs/errors.md for this code.',
    }
  );
}
