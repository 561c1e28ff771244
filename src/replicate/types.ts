/**
 * A Replicate prediction or training object, parsed leniently: only `id` and `status` are required
 * (checked by ingest); everything else may be absent, null, or of a shape we have not seen.
 */
export interface ReplicateObject {
  id: string;
  status: string;
  model?: unknown;
  version?: unknown;
  input?: unknown;
  output?: unknown;
  error?: unknown;
  logs?: unknown;
  metrics?: unknown;
  created_at?: unknown;
  started_at?: unknown;
  completed_at?: unknown;
  urls?: unknown;
  data_removed?: unknown;
  [key: string]: unknown;
}

export const OBJECT_KINDS = ['prediction', 'training'] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

/**
 * A training, as CONTRACT §4 tells them apart: its `urls.get` names `/trainings/`, or its output is
 * `{version, weights}`. The URL is what marks a training that failed or was canceled (no output).
 */
export function isTrainingObject(object: Pick<ReplicateObject, 'output' | 'urls'>): boolean {
  return isTrainingUrl(object.urls) || isTrainingOutput(object.output);
}

function isTrainingUrl(urls: unknown): boolean {
  if (typeof urls !== 'object' || urls === null) return false;
  const get = (urls as { get?: unknown }).get;
  if (typeof get !== 'string') return false;
  try {
    return new URL(get).pathname.includes('/trainings/');
  } catch {
    return false;
  }
}

function isTrainingOutput(output: unknown): boolean {
  return (
    typeof output === 'object' &&
    output !== null &&
    !Array.isArray(output) &&
    'version' in output &&
    'weights' in output
  );
}

/** Fields left out of list summaries (CONTRACT §5): the big, cumulative ones. */
export const SUMMARY_OMITTED_FIELDS: ReadonlySet<string> = new Set(['input', 'output', 'logs']);
