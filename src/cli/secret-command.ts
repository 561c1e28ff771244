import type { Command } from 'commander';
import { ConfigError, type Env, readSecretsFromEnv } from '../config.js';
import type { ReplicateApiConfig } from '../replicate/api-config.js';
import { parseReplicateApiConfig } from '../replicate-settings.js';
import { ReplicateApiError, ReplicateClient } from '../replicate/client.js';
import { type CliContext, CommandFailedError, EXIT_OK, UsageError, println } from './context.js';

export function registerSecretCommand(program: Command, ctx: CliContext): void {
  program
    .command('secret')
    .description(
      "print the account's webhook signing secret (GET /v1/webhooks/default/secret) [env: REPLICATE_API_TOKEN, REPLICATE_BASE_URL]",
    )
    .action(async () => {
      const api = replicateApiOrExit(ctx.env);
      let key: string;
      try {
        key = await new ReplicateClient(api).defaultWebhookSecret();
      } catch (error) {
        throw new CommandFailedError(`Cannot fetch the webhook secret from ${api.baseUrl}: ${reason(error)}`);
      }
      println(ctx.stdout, key);
      ctx.setExitCode(EXIT_OK);
    });
}

/** The API settings with a token, else a usage error (exit 2) saying how to give one. */
export function replicateApiOrExit(env: Env): ReplicateApiConfig {
  const api = parseReplicateApiConfig(env);
  if (api.token === undefined) {
    throw new UsageError(
      'REPLICATE_API_TOKEN is not set: Inlet needs your Replicate API token to call Replicate (https://replicate.com/account/api-tokens).',
    );
  }
  return api;
}

export function reason(error: unknown): string {
  if (error instanceof ReplicateApiError) {
    if (error.status === 401 || error.status === 403)
      return `Replicate refused the token (${error.status}); check REPLICATE_API_TOKEN.`;
    return `${error.message} (HTTP ${error.status}).`;
  }
  const cause = (error as { cause?: { code?: string } }).cause?.code;
  return `${error instanceof Error ? error.message : String(error)}${cause === undefined ? '' : ` (${cause})`}.`;
}

/**
 * `serve` with a token and no secret fetches the account's secret (CONTRACT §11): answers the
 * environment with `REPLICATE_WEBHOOK_SECRET` set, or undefined when there is nothing to fetch.
 * A fetch that fails (after the client's retries) stops the start: exit 2.
 */
export async function fetchMissingSecret(env: Env): Promise<{ env: Env; baseUrl: string } | undefined> {
  if (readSecretsFromEnv(env).secrets.length > 0) return undefined;
  const api = parseReplicateApiConfig(env);
  if (api.token === undefined) return undefined;
  try {
    const key = await new ReplicateClient(api).defaultWebhookSecret();
    return { env: { ...env, REPLICATE_WEBHOOK_SECRET: key }, baseUrl: api.baseUrl };
  } catch (error) {
    throw new ConfigError(
      'REPLICATE_WEBHOOK_SECRET',
      `No webhook secret given and fetching it from ${api.baseUrl} failed: ${reason(error)} Set REPLICATE_WEBHOOK_SECRET (inlet secret prints it).`,
    );
  }
}
