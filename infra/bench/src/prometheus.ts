/**
 * Our API's response cache counters, read from its Prometheus endpoint (GET /metrics/prometheus,
 * text exposition format): `blog_response_cache_lookups_total{result="hit"|"miss"}`. A phase's
 * figures are the difference between a reading before it and one after it.
 */
export const CACHE_LOOKUPS = 'blog_response_cache_lookups_total';

export interface CacheLookups {
  hit: number;
  miss: number;
}

/**
 * The sum of a metric's samples (every label set) whose labels include `labels`, from a text
 * exposition. Comment lines and other metrics are skipped; a metric that is absent sums to 0.
 */
export function sampleSum(text: string, metric: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const rest = line.slice(metric.length);
    let labelText = '';
    let valueText: string;
    if (rest.startsWith('{')) {
      const close = rest.lastIndexOf('}');
      labelText = rest.slice(1, close);
      valueText = rest.slice(close + 1);
    } else if (rest.startsWith(' ')) {
      valueText = rest;
    } else {
      continue; // another metric whose name starts with this one's
    }
    const have = new Map([...labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(valueText.trim().split(/\s+/)[0]);
  }
  return sum;
}

export function parseCacheLookups(text: string): CacheLookups {
  return { hit: sampleSum(text, CACHE_LOOKUPS, { result: 'hit' }), miss: sampleSum(text, CACHE_LOOKUPS, { result: 'miss' }) };
}

/** The counters now, from the API at `baseUrl` (http://host:port). */
export async function cacheLookups(baseUrl: string): Promise<CacheLookups> {
  const res = await fetch(`${baseUrl}/metrics/prometheus`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${baseUrl}/metrics/prometheus: HTTP ${res.status}`);
  return parseCacheLookups(await res.text());
}

export function lookupsBetween(before: CacheLookups, after: CacheLookups): CacheLookups & { ratio: number } {
  const hit = after.hit - before.hit;
  const miss = after.miss - before.miss;
  return { hit, miss, ratio: hit + miss > 0 ? hit / (hit + miss) : Number.NaN };
}
