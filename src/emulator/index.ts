export { createEmulator, EMULATOR_DEFAULTS, ReplicateEmulator } from './emulator.js';
export type { EmulatorOptions } from './emulator.js';
export type {
  ApiError,
  CreateOptions,
  CreateResult,
  CreateTarget,
  ListFilters,
  ListPage,
} from './api-types.js';
export { MIN_CANCEL_AFTER_MS, parseDuration, parsePreferWait } from './headers.js';
export { loadOrCreateCertificate } from './tls.js';
export type { EmulatorCertificate, TlsPems } from './tls.js';
export { FAKE_MODELS, findModel, findModelByVersion, versionIdOf } from './models.js';
export type { FakeModel, ModelStep } from './models.js';
export { encodePng, gradientPng } from './png.js';
export {
  DEFAULT_EVENTS_FILTER,
  THROTTLE_MS,
  toPublicObject,
  WEBHOOK_EVENTS,
  WebhookGate,
  isWebhookEvent,
} from './prediction.js';
export type { PredictionRecord, WebhookEvent } from './prediction.js';
export { FORCED_STATUSES, SAMPLE_INPUTS, simulatePrediction } from './simulate.js';
export type { ForcedStatus, SimulatedWebhook, SimulationOptions } from './simulate.js';
export { postOnce } from './http-post.js';
export type { PostResult } from './http-post.js';
export { DEFAULT_FAULT_DELAY_MS, FAULT_KINDS, RETRY_BASE_MS } from './webhook-sender.js';
export type {
  DeliveryAttempt,
  DeliveryOutcome,
  EmulatorLogger,
  FaultKind,
  FaultOptions,
} from './webhook-sender.js';
