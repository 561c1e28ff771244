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

/** Trainings are recognised by their output shape: `{version, weights}` (nothing else says "training"). */
export function isTrainingOutput(output: unknown): boolean {
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
