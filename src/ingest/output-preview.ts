/** Longest preview of a prediction's output in a log line. */
const OUTPUT_PREVIEW_CHARS = 100;

/**
 * A short, one-line preview of `output` for the human log line (the tutorial printed each output):
 * JSON, cut at `maxChars` with `…`, never walking more of a large output than the preview needs.
 * Undefined when there is no output yet.
 */
export function outputPreview(output: unknown, maxChars = OUTPUT_PREVIEW_CHARS): string | undefined {
  if (output === undefined || output === null) return undefined;
  const parts: string[] = [];
  let length = 0;
  const push = (text: string): boolean => {
    parts.push(text);
    length += text.length;
    return length <= maxChars;
  };
  const walk = (value: unknown, depth: number): boolean => {
    if (Array.isArray(value)) {
      if (depth > 8) return push('[…]');
      if (!push('[')) return false;
      for (const [i, item] of value.entries()) {
        if (i > 0 && !push(',')) return false;
        if (!walk(item, depth + 1)) return false;
      }
      return push(']');
    }
    if (typeof value === 'object' && value !== null) {
      if (depth > 8) return push('{…}');
      if (!push('{')) return false;
      let first = true;
      for (const key of Object.keys(value)) {
        if (!first && !push(',')) return false;
        first = false;
        if (!push(`${JSON.stringify(key)}:`)) return false;
        if (!walk((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return push('}');
    }
    if (typeof value === 'string') {
      // Only as much of a long string as can show.
      const room = Math.max(0, maxChars - length + 1);
      return push(JSON.stringify(value.length > room ? value.slice(0, room) : value));
    }
    return push(JSON.stringify(value) ?? 'null');
  };
  walk(output, 0);
  const text = parts.join('').replace(/\s+/g, ' ');
  return text.length <= maxChars ? text : `${text.slice(0, maxChars - 1)}…`;
}
