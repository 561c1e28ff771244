import type { EmulatedKind, PredictionRecord, WebhookEvent } from './prediction.js';
import type { Upload } from './uploads.js';

// The types the emulator (emulator.ts) and its HTTP layer (http-api.ts) share, so that http-api.ts needs
// nothing from emulator.ts (which imports http-api.ts to serve).

/** What `createPrediction` needs: which route was used, the JSON body, and the parsed headers. */
export type CreateTarget =
  | { readonly type: 'version' }
  | { readonly type: 'model'; readonly owner: string; readonly name: string }
  | { readonly type: 'deployment'; readonly owner: string; readonly name: string }
  | { readonly type: 'training'; readonly owner: string; readonly name: string; readonly version: string };

export interface CreateOptions {
  /** The `Cancel-After` deadline (before the time scale). */
  readonly cancelAfterMs?: number;
  /** The origin the object's URLs use (default `origin`): the HTTP layer passes the request's. */
  readonly origin?: string;
}

export type CreateResult =
  | { readonly ok: true; readonly id: string; readonly prediction: Record<string, unknown> }
  | { readonly ok: false; readonly error: ApiError };

/** Replicate's error shape: `{title?, detail, status}` (plus `invalid_fields` on 422). */
export interface ApiError {
  readonly status: number;
  readonly body: {
    readonly title?: string;
    readonly detail: string;
    readonly status: number;
    readonly [key: string]: unknown;
  };
}

export interface ListPage {
  readonly results: readonly Record<string, unknown>[];
  /** Cursors, made into URLs by the HTTP layer. */
  readonly next: string | null;
  readonly previous: string | null;
}

/** The filters of `GET /v1/predictions` (and trainings). */
export interface ListFilters {
  /** At or after (epoch ms). */
  readonly createdAfterMs?: number;
  /** Strictly before (epoch ms). */
  readonly createdBeforeMs?: number;
  readonly source?: 'api' | 'web';
}

/** What the HTTP layer needs from the emulator. */
export interface EmulatorCore {
  readonly secret: string;
  readonly origin: string;
  /** The origin of a request made over HTTPS (`secure`) or plain HTTP. */
  originFor(secure: boolean): string;
  createPrediction(target: CreateTarget, body: unknown, options: CreateOptions): CreateResult;
  getPrediction(id: string, kind: EmulatedKind): Record<string, unknown> | undefined;
  cancelPrediction(id: string, kind: EmulatedKind): Record<string, unknown> | undefined;
  listPredictions(kind: EmulatedKind, cursor: string | undefined, filters: ListFilters): ListPage | undefined;
  listModels(origin: string): Record<string, unknown>[];
  getModel(owner: string, name: string, origin: string): Record<string, unknown> | undefined;
  createModel(
    body: unknown,
    origin: string,
  ): { ok: true; model: Record<string, unknown> } | { ok: false; error: ApiError };
  listVersions(owner: string, name: string): Record<string, unknown>[] | undefined;
  getVersion(owner: string, name: string, id: string): Record<string, unknown> | undefined;
  getDeployment(owner: string, name: string): Record<string, unknown> | undefined;
  createUpload(
    file: Pick<Upload, 'name' | 'contentType' | 'bytes' | 'metadata'>,
    origin: string,
  ): Record<string, unknown>;
  getUpload(id: string): Upload | undefined;
  listUploads(): Record<string, unknown>[];
  deleteUpload(id: string): boolean;
  waitForEnd(id: string, ms: number): Promise<void>;
  file(
    id: string,
    name: string,
  ): { status: 'ok'; contentType: string; bytes: Buffer } | { status: 'gone' } | { status: 'missing' };
  subscribe(id: string, listener: (events: readonly WebhookEvent[]) => void): (() => void) | undefined;
  record(id: string): Readonly<PredictionRecord> | undefined;
  readonly models: readonly { readonly name: string }[];
}
