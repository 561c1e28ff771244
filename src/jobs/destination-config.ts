import { z } from 'zod';
import { isBrokerUrl, parseBrokerUrl } from './broker-url.js';
import { secretProblem } from '../verify/secret.js';

/** Replicate-style retry schedule (CONTRACT §9): about 24 hours in all. */
export const DEFAULT_RETRY_DELAYS_MS = [
  5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000, 28_800_000,
] as const;

const DEFAULT_DESTINATION_EVENTS = ['prediction.completed', 'training.completed'] as const;

/** `prediction.completed`, `training.*`, `prediction.*`, `*`. */
const EVENT_PATTERN = /^(\*|(prediction|training|inlet)\.(\*|[a-z_]+))$/;
/** `owner/name` or `owner/*`. */
const MODEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*\/(\*|[A-Za-z0-9][A-Za-z0-9_.-]*)$/;

export const DestinationSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must match [a-z0-9][a-z0-9_-]{0,62}')
      .describe('Unique name: used in the API, the CLI and message ids.'),
    url: z
      .url({
        protocol: /^(https?|nats|rediss?)$/,
        error: 'must be an http://, https://, nats:// or redis:// URL',
      })
      .check((ctx) => {
        if (!isBrokerUrl(ctx.value)) return;
        const parsed = parseBrokerUrl(ctx.value);
        if (!parsed.ok) ctx.issues.push({ code: 'custom', message: parsed.problem, input: ctx.value });
      })
      .describe(
        'Where messages go: POSTed to an http(s) URL, published to nats://HOST:PORT/SUBJECT (JetStream) or appended to redis://HOST:PORT/STREAM.',
      ),
    secret: z
      .string()
      .regex(/^(whsec_)?[A-Za-z0-9+/_-]+={0,2}$/, 'must be whsec_ followed by base64')
      .superRefine((secret, ctx) => {
        const problem = secretProblem(secret);
        if (problem !== undefined) {
          ctx.addIssue({ code: 'custom', message: `must be whsec_ followed by base64 (${problem})` });
        }
      })
      .optional()
      .describe(
        'Standard Webhooks secret the messages are signed with; when absent one is generated once and stored.',
      ),
    events: z
      .array(z.string().regex(EVENT_PATTERN, 'must be a transition type or a pattern such as prediction.*'))
      .min(1)
      .default([...DEFAULT_DESTINATION_EVENTS])
      .describe('Transition types sent; `*` and `prediction.*` patterns allowed.'),
    models: z
      .array(z.string().regex(MODEL_PATTERN, 'must be owner/name or owner/*'))
      .min(1)
      .optional()
      .describe('Models sent (exact owner/name or owner/*); all when absent.'),
    headers: z
      .record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a header name'), z.string())
      .default({})
      .describe('Extra headers on every request.'),
    timeoutMs: z.int().min(1).max(300_000).default(10_000).describe('One attempt’s time limit.'),
    ordered: z
      .boolean()
      .default(true)
      .describe('Hold a message until earlier ones of the same prediction are delivered or dead.'),
    maxInFlight: z.int().min(1).max(1000).default(10).describe('Attempts at once for this destination.'),
    retryDelaysMs: z
      .array(z.int().min(0))
      .min(0)
      .default([...DEFAULT_RETRY_DELAYS_MS])
      .describe('Wait before each retry (±20% jitter); after the last, the message is dead.'),
    allowPrivateNetwork: z
      .boolean()
      .default(false)
      .describe('Allow loopback, private, link-local and metadata addresses (checked at each connection).'),
  })
  .describe('An HTTP destination: every matching transition is POSTed to it, signed, retried.');

export type DestinationConfig = z.output<typeof DestinationSchema>;
