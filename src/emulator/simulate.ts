import { findModel, pythonTraceback, type FakeModel, type Input, type ModelStep } from './models.js';
import {
  applyStep,
  THROTTLE_MS,
  toPublicObject,
  WebhookGate,
  type EndStep,
  type PredictionRecord,
  type WebhookEvent,
} from './prediction.js';
import { newPredictionId } from './random.js';

/** Inputs `inlet trigger` runs each fake model with. */
export const SAMPLE_INPUTS: Readonly<Record<string, Input>> = {
  'inlet/echo': { text: 'Hello from inlet trigger' },
  'inlet/image': { prompt: 'a lighthouse at dawn, watercolour', n: 2 },
  'inlet/stream': { prompt: 'Tell me about webhooks' },
  'inlet/fail': {},
  'inlet/slow': { seconds: 3 },
};

export const FORCED_STATUSES = ['succeeded', 'failed', 'canceled'] as const;
export type ForcedStatus = (typeof FORCED_STATUSES)[number];

export interface SimulationOptions {
  readonly model: FakeModel;
  readonly input?: Input;
  readonly id?: string;
  /** Where the object's URLs point (files, get, cancel). */
  readonly origin: string;
  readonly webhook: string;
  readonly events: readonly WebhookEvent[];
  /** Ends the run this way instead of the model's own end. */
  readonly status?: ForcedStatus;
  /** The run is placed so that it ends at this time (epoch ms). */
  readonly endAtMs: number;
}

export interface SimulatedWebhook {
  readonly event: WebhookEvent;
  /** Virtual ms after creation. */
  readonly atMs: number;
  readonly status: string;
  readonly body: string;
}

const FORCED_FAILURE = 'Emulated failure (forced by --status failed)';

/** The model's steps, with the end replaced when a status is forced. */
function stepsEndingWith(
  steps: readonly ModelStep[],
  status: ForcedStatus | undefined,
): (ModelStep | (EndStep & { readonly atMs: number }))[] {
  const last = steps[steps.length - 1];
  if (status === undefined || last === undefined) return [...steps];
  const body = steps.slice(0, -1);
  if (status === 'succeeded') {
    return last.kind === 'succeed' ? [...steps] : [...body, { atMs: last.atMs, kind: 'succeed' }];
  }
  if (status === 'failed') {
    if (last.kind === 'fail') return [...steps];
    return [
      ...body,
      { atMs: last.atMs, kind: 'log', text: pythonTraceback(FORCED_FAILURE) },
      { atMs: last.atMs + 10, kind: 'fail', error: FORCED_FAILURE },
    ];
  }
  // canceled: halfway between the start and the natural end.
  const start = steps.find((s) => s.kind === 'start')?.atMs ?? 0;
  const cancelAt = Math.round((start + last.atMs) / 2);
  return [...body.filter((s) => s.atMs < cancelAt), { atMs: cancelAt, kind: 'cancel' }];
}

/**
 * Runs a fake model in virtual time with the emulator's own lifecycle and webhook rules
 * (`applyStep`, `WebhookGate`), returning the webhooks Replicate would send, in order.
 */
export function simulatePrediction(options: SimulationOptions): {
  record: PredictionRecord;
  webhooks: SimulatedWebhook[];
} {
  const { model, origin } = options;
  const id = options.id ?? newPredictionId();
  const input = options.input ?? SAMPLE_INPUTS[model.name] ?? {};
  const ctx = { predictionId: id, fileUrl: (name: string) => `${origin}/files/${id}/${name}` };
  const steps = stepsEndingWith(model.script(input, ctx), options.status);
  const endMs = steps[steps.length - 1]?.atMs ?? 0;
  const t0 = options.endAtMs - endMs;
  const record: PredictionRecord = {
    id,
    kind: 'prediction',
    seq: 1,
    model: model.name,
    version: model.version,
    input: { ...input },
    output: null,
    logs: '',
    error: null,
    status: 'starting',
    createdAtMs: t0,
    startedAtMs: null,
    completedAtMs: null,
    webhook: options.webhook,
    webhookEventsFilter: options.events,
    deadlineMs: null,
    deployment: undefined,
    streams: model.streams,
    dataRemoved: false,
  };
  const gate = new WebhookGate(options.events, THROTTLE_MS);
  const webhooks: SimulatedWebhook[] = [];
  for (const step of steps) {
    const events = applyStep(record, step, t0 + step.atMs);
    const event = gate.select(events, step.atMs);
    if (event !== undefined) {
      webhooks.push({
        event,
        atMs: step.atMs,
        status: record.status,
        body: JSON.stringify(toPublicObject(record, origin)),
      });
    }
  }
  return { record, webhooks };
}

export { findModel };
