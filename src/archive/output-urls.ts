/** Where the URLs of an output are, as JSON paths (`output[0]`, `output.images[2]`). */
export interface OutputUrl {
  path: string;
  url: string;
}

/** More than any model's output holds; a bound on what a hostile output can make Inlet record. */
export const MAX_URLS_PER_OUTPUT = 1000;
/** Files sit a few levels deep in real outputs; deeper nesting is not searched (and never recursed into). */
export const MAX_URL_DEPTH = 32;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return IDENTIFIER.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

/** A string that is one http(s) URL and nothing else. */
export function isHttpUrl(text: string): boolean {
  if (!/^https?:\/\//i.test(text) || /\s/.test(text)) return false;
  try {
    new URL(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Every http(s) URL in an output: strings in arrays and objects, recursively, in document order.
 * Stops at `limit` URLs.
 */
export function findOutputUrls(output: unknown, limit = MAX_URLS_PER_OUTPUT): OutputUrl[] {
  const found: OutputUrl[] = [];
  // Iterative, so deep nesting cannot overflow the stack.
  const stack: { value: unknown; path: string; depth: number }[] = [
    { value: output, path: 'output', depth: 0 },
  ];
  while (stack.length > 0 && found.length < limit) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      if (isHttpUrl(value)) found.push({ path, url: value });
    } else if (depth >= MAX_URL_DEPTH) {
      continue;
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) {
        stack.push({ value: value[i], path: childPath(path, i), depth: depth + 1 });
      }
    } else if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i]!;
        stack.push({ value: child, path: childPath(path, key), depth: depth + 1 });
      }
    }
  }
  return found;
}

/**
 * A copy of `output` where each string at one of `replacements`' paths, when it still equals the
 * expected source URL, becomes the given URL. Paths are rebuilt exactly as `findOutputUrls` built them.
 */
export function replaceOutputUrls(
  output: unknown,
  replacements: ReadonlyMap<string, { sourceUrl: string; url: string }>,
): unknown {
  if (replacements.size === 0) return output;
  const paths = [...replacements.keys()];
  const visit = (value: unknown, path: string): unknown => {
    // Only the branches leading to a replaced path are copied (and recursed into: at most
    // MAX_URL_DEPTH deep, as `findOutputUrls` found them); the rest is shared as it is.
    if (!paths.some((p) => p.startsWith(path))) return value;
    if (typeof value === 'string') {
      const replacement = replacements.get(path);
      return replacement !== undefined && replacement.sourceUrl === value ? replacement.url : value;
    }
    if (Array.isArray(value)) return value.map((child, i) => visit(child, childPath(path, i)));
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
        // defineProperty: `out[key] =` would set the prototype for a key named `__proto__`.
        Object.defineProperty(out, key, {
          value: visit(child, childPath(path, key)),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    return value;
  };
  return visit(output, 'output');
}
