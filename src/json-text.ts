/**
 * JSON text of a value, exactly as `JSON.stringify(value, null, indent)` writes it, also for values
 * nested deeper than `JSON.stringify` can go: it recurses and throws a RangeError past a few thousand
 * levels, while `JSON.parse` reads any depth. A stored body is the user's data, so the views of it
 * (the admin API, the CLI) write it whatever its depth.
 */

/**
 * Indented output only: levels deeper than this are written on one line, so a value nested 100,000
 * levels deep stays as long as its compact form instead of growing with the square of its depth.
 * Values that `JSON.stringify` can write are written by it, indented all the way down.
 */
export const INDENTED_LEVELS = 100;

/** The JSON text of `value`; `null` where `JSON.stringify` would give nothing (undefined, a function). */
export function jsonText(value: unknown, indent = 0): string {
  try {
    return JSON.stringify(value, null, indent) ?? 'null';
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
  }
  return stringifyWithoutRecursion(value, ' '.repeat(Math.min(10, Math.max(0, indent))));
}

/** What `JSON.stringify` writes for `value` as the property `key`: `toJSON()`'s result, boxed primitives unboxed. */
function jsonValue(key: string, value: unknown): unknown {
  let result = value;
  if (result !== null && (typeof result === 'object' || typeof result === 'bigint')) {
    const toJSON = (result as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') result = (toJSON as (key: string) => unknown).call(result, key);
  }
  if (result instanceof Number) return Number(result);
  if (result instanceof String) return String(result);
  if (result instanceof Boolean) return result.valueOf();
  return result;
}

interface Frame {
  container: object;
  /** An object's own enumerable keys; undefined for an array. */
  keys: readonly string[] | undefined;
  length: number;
  next: number;
  written: number;
  /** Kept in the set of sampled open containers, against cycles. */
  isSample: boolean;
}

const CYCLE_SAMPLE = 64;

/** The same text as `JSON.stringify` (past `INDENTED_LEVELS` on one line), with a stack of its own. */
export function stringifyWithoutRecursion(root: unknown, gap: string): string {
  const parts: string[] = [];
  const stack: Frame[] = [];
  // Cycles: JSON.stringify checks every open container against a set, which would cost most of the
  // time here (a set gives each object an identity hash). Checking the levels at multiples of
  // CYCLE_SAMPLE is enough: below a cycle of length L the same containers come back every L levels,
  // so a container open at such a level comes back at a level CYCLE_SAMPLE × L deeper, also checked.
  const sampled = new Set<object>();

  /** Writes one value (opening it when it is an array or an object); false when it has no JSON form. */
  const write = (key: string, raw: unknown): boolean => {
    const value = jsonValue(key, raw);
    if (value === null || typeof value !== 'object') {
      // A primitive (a bigint throws the TypeError JSON.stringify throws), or undefined for nothing.
      const text = JSON.stringify(value) as string | undefined;
      if (text === undefined) return false;
      parts.push(text);
      return true;
    }
    const isSample = (stack.length + 1) % CYCLE_SAMPLE === 0;
    if (isSample) {
      if (sampled.has(value)) throw new TypeError('Converting circular structure to JSON');
      sampled.add(value);
    }
    const keys = Array.isArray(value) ? undefined : Object.keys(value);
    parts.push(keys === undefined ? '[' : '{');
    stack.push({
      container: value,
      keys,
      length: keys === undefined ? (value as unknown[]).length : keys.length,
      next: 0,
      written: 0,
      isSample,
    });
    return true;
  };

  if (!write('', root)) return 'null';
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const depth = stack.length;
    const indented = gap !== '' && depth <= INDENTED_LEVELS;
    if (frame.next < frame.length) {
      const index = frame.next++;
      const mark = parts.length;
      if (frame.written > 0) parts.push(',');
      if (indented) parts.push(`\n${gap.repeat(depth)}`);
      if (frame.keys === undefined) {
        // Arrays write null for what has no JSON form.
        frame.written++;
        if (!write(String(index), (frame.container as unknown[])[index])) parts.push('null');
      } else {
        const key = frame.keys[index]!;
        parts.push(JSON.stringify(key), indented ? ': ' : ':');
        // Objects leave such a property out.
        if (write(key, (frame.container as Record<string, unknown>)[key])) frame.written++;
        else parts.length = mark;
      }
    } else {
      stack.pop();
      if (frame.isSample) sampled.delete(frame.container);
      if (frame.written > 0 && indented) parts.push(`\n${gap.repeat(depth - 1)}`);
      parts.push(frame.keys === undefined ? ']' : '}');
    }
  }
  return parts.join('');
}
