import { createHash } from 'node:crypto';
import { gradientPng } from './png.js';
import { hash32 } from './random.js';

/**
 * One step of a fake model's run, `atMs` after the prediction was created (before the time scale).
 * Runs in real time inside the emulator and in virtual time for `inlet trigger`.
 */
export type ModelStep =
  | { readonly atMs: number; readonly kind: 'start' }
  | { readonly atMs: number; readonly kind: 'log'; readonly text: string }
  | {
      readonly atMs: number;
      readonly kind: 'output';
      readonly output: unknown;
      readonly files?: readonly ModelFile[];
    }
  | { readonly atMs: number; readonly kind: 'succeed' }
  | { readonly atMs: number; readonly kind: 'fail'; readonly error: string };

export interface ModelFile {
  readonly name: string;
  readonly contentType: string;
  /** Made lazily: the bytes are needed only when the emulator serves them. */
  readonly bytes: () => Buffer;
}

export interface ScriptContext {
  readonly predictionId: string;
  /** The URL the emulator serves an output file of this prediction at. */
  fileUrl(name: string): string;
}

export interface InvalidField {
  readonly type: string;
  readonly field: string;
  readonly description: string;
}

export type InputCheck = { ok: true } | { ok: false; fields: InvalidField[] };

export type Input = Readonly<Record<string, unknown>>;

export type JsonSchema = Readonly<Record<string, unknown>>;

function objectSchema(
  properties: Record<string, Record<string, unknown>>,
  required: readonly string[] = [],
): JsonSchema {
  return { type: 'object', title: 'Input', properties, ...(required.length > 0 ? { required } : {}) };
}

const URI_LIST: JsonSchema = { type: 'array', title: 'Output', items: { type: 'string', format: 'uri' } };

export interface FakeModel {
  /** `owner/name`. */
  readonly name: string;
  readonly version: string;
  readonly description: string;
  /** Whether predictions get a `urls.stream` server-sent-events URL. */
  readonly streams: boolean;
  /** Documented in docs/emulator.md: input fields and what they do. */
  readonly inputs: string;
  /** JSON Schema of the input (the version's `openapi_schema` `Input`), and of the output. */
  readonly inputSchema: JsonSchema;
  readonly outputSchema: JsonSchema;
  validate(input: Input): InputCheck;
  script(input: Input, ctx: ScriptContext): ModelStep[];
}

/** A stable 64-hex version id per model, like Replicate's. */
export function versionIdOf(name: string): string {
  return createHash('sha256').update(`inlet-emulator:${name}:v1`).digest('hex');
}

function checks(input: Input, rules: ((input: Input) => InvalidField | undefined)[]): InputCheck {
  const fields = rules.map((rule) => rule(input)).filter((f): f is InvalidField => f !== undefined);
  return fields.length === 0 ? { ok: true } : { ok: false, fields };
}

function requiredString(field: string) {
  return (input: Input): InvalidField | undefined => {
    const value = input[field];
    if (value === undefined) return { type: 'required', field, description: `${field} is required` };
    if (typeof value !== 'string')
      return { type: 'invalid_type', field, description: `${field} must be a string` };
    return undefined;
  };
}

function optionalString(field: string) {
  return (input: Input): InvalidField | undefined => {
    const value = input[field];
    if (value === undefined || typeof value === 'string') return undefined;
    return { type: 'invalid_type', field, description: `${field} must be a string` };
  };
}

function optionalNumber(field: string, min: number, max: number, integer: boolean) {
  return (input: Input): InvalidField | undefined => {
    const value = input[field];
    if (value === undefined) return undefined;
    const kind = integer ? 'an integer' : 'a number';
    if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
      return { type: 'invalid_type', field, description: `${field} must be ${kind}` };
    }
    if (value < min || value > max) {
      return { type: 'out_of_range', field, description: `${field} must be ${kind} from ${min} to ${max}` };
    }
    return undefined;
  };
}

function numberOr(input: Input, field: string, fallback: number): number {
  const value = input[field];
  return typeof value === 'number' ? value : fallback;
}

function stringOr(input: Input, field: string, fallback: string): string {
  const value = input[field];
  return typeof value === 'string' ? value : fallback;
}

function tqdm(step: number, total: number): string {
  const width = 10;
  const filled = Math.round((step / total) * width);
  const percent = String(Math.round((step / total) * 100)).padStart(3);
  return `${percent}%|${'█'.repeat(filled)}${' '.repeat(width - filled)}| ${step}/${total} [00:0${step}<00:0${total - step}, 4.00it/s]\n`;
}

const echo: FakeModel = {
  name: 'inlet/echo',
  version: versionIdOf('inlet/echo'),
  description: 'Returns its text input as output.',
  streams: true,
  inputs: '`text` (string, required)',
  inputSchema: objectSchema({ text: { type: 'string', title: 'Text' } }, ['text']),
  outputSchema: { type: 'string', title: 'Output' },
  validate: (input) => checks(input, [requiredString('text')]),
  script(input) {
    const text = stringOr(input, 'text', '');
    return [
      { atMs: 300, kind: 'start' },
      { atMs: 350, kind: 'log', text: `echoing ${text.length} characters\n` },
      { atMs: 900, kind: 'output', output: text },
      { atMs: 950, kind: 'succeed' },
    ];
  },
};

const image: FakeModel = {
  name: 'inlet/image',
  version: versionIdOf('inlet/image'),
  description: 'Makes n small PNG images (served by the emulator) from a prompt.',
  streams: false,
  inputs: '`prompt` (string, required), `n` (integer 1–4, default 1)',
  inputSchema: objectSchema(
    {
      prompt: { type: 'string', title: 'Prompt' },
      n: { type: 'integer', title: 'N', minimum: 1, maximum: 4, default: 1 },
    },
    ['prompt'],
  ),
  outputSchema: URI_LIST,
  validate: (input) => checks(input, [requiredString('prompt'), optionalNumber('n', 1, 4, true)]),
  script(input, ctx) {
    const prompt = stringOr(input, 'prompt', '');
    const n = numberOr(input, 'n', 1);
    const seed = hash32(`${ctx.predictionId}:${prompt}`) % 100_000;
    const steps: ModelStep[] = [
      { atMs: 500, kind: 'start' },
      { atMs: 550, kind: 'log', text: `Using seed: ${seed}\n` },
    ];
    const total = 4;
    for (let i = 1; i <= total; i++) steps.push({ atMs: 550 + i * 300, kind: 'log', text: tqdm(i, total) });
    const files: ModelFile[] = [];
    for (let i = 0; i < n; i++) {
      const name = `out-${i}.png`;
      files.push({
        name,
        contentType: 'image/png',
        bytes: () => gradientPng(hash32(`${ctx.predictionId}/${name}`)),
      });
    }
    steps.push({ atMs: 2300, kind: 'output', output: files.map((f) => ctx.fileUrl(f.name)), files });
    steps.push({ atMs: 2350, kind: 'succeed' });
    return steps;
  },
};

const STREAM_TOKEN_MS = 200;

const stream: FakeModel = {
  name: 'inlet/stream',
  version: versionIdOf('inlet/stream'),
  description: 'Streams a reply token by token: output is the array of tokens so far.',
  streams: true,
  inputs: '`prompt` (string, required), `max_tokens` (integer 1–200, default 12)',
  inputSchema: objectSchema(
    {
      prompt: { type: 'string', title: 'Prompt' },
      max_tokens: { type: 'integer', title: 'Max Tokens', minimum: 1, maximum: 200, default: 12 },
    },
    ['prompt'],
  ),
  outputSchema: {
    type: 'array',
    title: 'Output',
    items: { type: 'string' },
    'x-cog-array-type': 'iterator',
    'x-cog-array-display': 'concatenate',
  },
  validate: (input) => checks(input, [requiredString('prompt'), optionalNumber('max_tokens', 1, 200, true)]),
  script(input) {
    const prompt = stringOr(input, 'prompt', '');
    const maxTokens = numberOr(input, 'max_tokens', 12);
    const words =
      `You said: ${prompt}. That is a fine thing to say, and here is a reply that goes on a while.`
        .split(/(?= )/)
        .filter((w) => w.length > 0);
    const tokens = Array.from({ length: maxTokens }, (_, i) => words[i % words.length] ?? '');
    const steps: ModelStep[] = [
      { atMs: 300, kind: 'start' },
      { atMs: 350, kind: 'log', text: `prompt: ${JSON.stringify(prompt)}\n` },
    ];
    tokens.forEach((_, i) => {
      const at = 500 + i * STREAM_TOKEN_MS;
      steps.push({ atMs: at, kind: 'output', output: tokens.slice(0, i + 1) });
      if ((i + 1) % 4 === 0) steps.push({ atMs: at + 10, kind: 'log', text: `generated ${i + 1} tokens\n` });
    });
    const end = 500 + tokens.length * STREAM_TOKEN_MS;
    steps.push({ atMs: end, kind: 'log', text: `done: ${tokens.length} tokens\n` });
    steps.push({ atMs: end + 50, kind: 'succeed' });
    return steps;
  },
};

const DEFAULT_FAILURE = 'CUDA out of memory. Tried to allocate 2.00 GiB (emulated failure)';

export function pythonTraceback(message: string): string {
  return [
    'Traceback (most recent call last):',
    '  File "/root/.pyenv/versions/3.11.10/lib/python3.11/site-packages/cog/server/worker.py", line 354, in _predict',
    '    result = predict(**payload)',
    '             ^^^^^^^^^^^^^^^^^^',
    '  File "/src/predict.py", line 27, in predict',
    '    raise RuntimeError(message)',
    `RuntimeError: ${message}`,
    '',
  ].join('\n');
}

const fail: FakeModel = {
  name: 'inlet/fail',
  version: versionIdOf('inlet/fail'),
  description: 'Always fails: status failed, error set, a Python traceback in logs.',
  streams: false,
  inputs: '`message` (string, optional: the error)',
  inputSchema: objectSchema({ message: { type: 'string', title: 'Message', default: DEFAULT_FAILURE } }),
  outputSchema: { type: 'string', title: 'Output' },
  validate: (input) => checks(input, [optionalString('message')]),
  script(input) {
    const message = stringOr(input, 'message', DEFAULT_FAILURE);
    return [
      { atMs: 300, kind: 'start' },
      { atMs: 400, kind: 'log', text: 'Loading weights...\n' },
      { atMs: 700, kind: 'log', text: 'Running prediction...\n' },
      { atMs: 900, kind: 'log', text: pythonTraceback(message) },
      { atMs: 910, kind: 'fail', error: message },
    ];
  },
};

const slow: FakeModel = {
  name: 'inlet/slow',
  version: versionIdOf('inlet/slow'),
  description:
    'Sleeps: `seconds` of processing, after `boot_seconds` of queueing (to test deadlines and cancel).',
  streams: false,
  inputs: '`seconds` (number 0–3600, default 10), `boot_seconds` (number 0–3600, default 0.3)',
  inputSchema: objectSchema({
    seconds: { type: 'number', title: 'Seconds', minimum: 0, maximum: 3600, default: 10 },
    boot_seconds: { type: 'number', title: 'Boot Seconds', minimum: 0, maximum: 3600, default: 0.3 },
  }),
  outputSchema: { type: 'string', title: 'Output' },
  validate: (input) =>
    checks(input, [
      optionalNumber('seconds', 0, 3600, false),
      optionalNumber('boot_seconds', 0, 3600, false),
    ]),
  script(input) {
    const seconds = numberOr(input, 'seconds', 10);
    const boot = Math.round(numberOr(input, 'boot_seconds', 0.3) * 1000);
    const steps: ModelStep[] = [{ atMs: boot, kind: 'start' }];
    for (let s = 1; s <= Math.floor(seconds); s++) {
      steps.push({ atMs: boot + s * 1000, kind: 'log', text: `slept ${s}/${seconds} s\n` });
    }
    const end = boot + Math.round(seconds * 1000);
    steps.push({ atMs: end, kind: 'output', output: `slept for ${seconds} seconds` });
    steps.push({ atMs: end + 10, kind: 'succeed' });
    return steps;
  },
};

export const FAKE_MODELS: readonly FakeModel[] = [echo, image, stream, fail, slow];

export function findModel(name: string): FakeModel | undefined {
  return FAKE_MODELS.find((m) => m.name === name);
}

export function findModelByVersion(version: string): FakeModel | undefined {
  return FAKE_MODELS.find((m) => m.version === version);
}

/** Every training, whatever the base model: three epochs, then `{version, weights}`. */
export function trainingScript(destination: string, ctx: ScriptContext): ModelStep[] {
  const version = createHash('sha256').update(`${ctx.predictionId}:${destination}`).digest('hex');
  const weights: ModelFile = {
    name: 'trained_model.tar',
    contentType: 'application/x-tar',
    bytes: () => Buffer.from(`emulated weights for ${destination}:${version}\n`),
  };
  const steps: ModelStep[] = [{ atMs: 500, kind: 'start' }];
  for (let epoch = 1; epoch <= 3; epoch++) {
    const loss = (1 / (epoch + 1)).toFixed(4);
    steps.push({ atMs: 500 + epoch * 500, kind: 'log', text: `epoch ${epoch}/3 loss=${loss}\n` });
  }
  steps.push({
    atMs: 2400,
    kind: 'output',
    output: { version: `${destination}:${version}`, weights: ctx.fileUrl(weights.name) },
    files: [weights],
  });
  steps.push({ atMs: 2450, kind: 'succeed' });
  return steps;
}
