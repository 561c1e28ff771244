/**
 * Why a POST probably missed the webhook path, in words, for the rejections log and the 404 answer: a
 * misconfigured URL is the most common way deliveries vanish, and Replicate shows only the status.
 */
export function webhookPathHint(path: string, webhookPath: string): string {
  const where = `Inlet receives webhooks at ${webhookPath}`;
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed === webhookPath.replace(/\/+$/, '')) {
    return `${where}, with one trailing slash at most; this path has ${path.length - trimmed.length}.`;
  }
  if (trimmed.endsWith(webhookPath) && trimmed.length > webhookPath.length) {
    const prefix = trimmed.slice(0, trimmed.length - webhookPath.length);
    return `${where}; this path adds the prefix ${prefix} (set in the URL given to Replicate, or by a proxy?).`;
  }
  if (webhookPath.endsWith(trimmed) && trimmed.length > 1) {
    return `${where}; this path lacks its beginning (${webhookPath.slice(0, webhookPath.length - trimmed.length)}).`;
  }
  if (trimmed.toLowerCase() === webhookPath.toLowerCase()) {
    return `${where}; paths are case-sensitive.`;
  }
  if (editDistance(trimmed, webhookPath, 4) <= 3) return `${where}; did you mean ${webhookPath}?`;
  return `${where}.`;
}

/** Levenshtein distance, giving up (answering `limit`) once it must be at least `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      current.push(value);
      rowMin = Math.min(rowMin, value);
    }
    if (rowMin >= limit) return limit;
    previous = current;
  }
  return Math.min(previous[b.length]!, limit);
}
