import { ENTITY_TYPES, MODEL, relationsOf, type Changes, type EntityType } from '@blog/shared';

/**
 * The response cache (RESPONSE_CACHE=on): the exact answer of a compiled read, by document and
 * variables, kept while nothing it read has changed. Kept as the UTF-8 bytes sent, encoded once when
 * stored: a hit is written to the socket as it is, without measuring or encoding its text again.
 *
 * What a read depends on is the entity types whose tables its statement reads (dependenciesOf).
 * Each entity type has a generation, raised by every message of the change feed naming it
 * (shared/src/sync/feed.ts); an answer is stored with the generations of its types as they were
 * when its read began, and served only while they are unchanged. So a read that began before a
 * change and ended after its message is stored already out of date and never served, and no
 * answer is served older than what this process has been told by the feed. While the feed is not
 * live (not yet connected, or lost: messages may have been missed), nothing is served or stored.
 *
 * The invalidation is by entity type: any change of a post drops every answer that read posts.
 * Answers do not depend on who asks (reads are the same for everyone: the token only matters to
 * mutations), so they are shared between clients. Memory: at most `maxBytes` (the answers' bytes and
 * their keys, two bytes a character), least recently used dropped first; an answer older than
 * `maxAgeMs` is not served (the one loss the feed cannot see, see feed.ts).
 */
export interface CacheSnapshot {
  generations: number[];
  epoch: number;
}

interface Cached {
  body: Buffer;
  deps: readonly EntityType[];
  snapshot: CacheSnapshot;
  at: number;
  bytes: number;
}

export interface ResponseCacheStats {
  hits: number;
  misses: number;
  /** Answers not stored: a change of what they read came while they were read. */
  raced: number;
  entries: number;
  bytes: number;
  live: boolean;
}

export class ResponseCache {
  private readonly generations = new Map<EntityType, number>(ENTITY_TYPES.map((t) => [t, 0]));
  /** Raised whenever everything is dropped (the feed lost or regained). */
  private epoch = 0;
  private live = false;
  private readonly entries = new Map<string, Cached>();
  private bytes = 0;
  private counts = { hits: 0, misses: 0, raced: 0 };

  constructor(private readonly options: { maxBytes: number; maxAgeMs: number; now?: () => number; onLookup?: (hit: boolean) => void }) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /** The feed is live (messages arrive) or not: either way what is held is dropped. */
  setLive(live: boolean): void {
    this.live = live;
    this.epoch += 1;
    this.entries.clear();
    this.bytes = 0;
  }

  /** A message of the change feed. */
  changed(changes: Changes): void {
    for (const type of ENTITY_TYPES) {
      const ids = changes[type];
      if (ids && (ids === '*' || ids.length)) this.generations.set(type, this.generations.get(type)! + 1);
    }
  }

  /** Taken before a read's statement is sent (see the comment at the top); undefined: do not store. */
  snapshot(deps: readonly EntityType[]): CacheSnapshot | undefined {
    if (!this.live) return undefined;
    return { generations: deps.map((t) => this.generations.get(t)!), epoch: this.epoch };
  }

  get(key: string): Buffer | undefined {
    const hit = this.entries.get(key);
    if (!hit || !this.valid(hit)) {
      if (hit) this.remove(key, hit);
      this.counts.misses += 1;
      this.options.onLookup?.(false);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, hit);
    this.counts.hits += 1;
    this.options.onLookup?.(true);
    return hit.body;
  }

  put(key: string, text: string, deps: readonly EntityType[], snapshot: CacheSnapshot): void {
    const at = this.now();
    if (!this.valid({ deps, snapshot, at })) {
      this.counts.raced += 1;
      return;
    }
    const body = Buffer.from(text);
    const cached: Cached = { body, deps, snapshot, at, bytes: body.length + 2 * key.length + 64 };
    if (cached.bytes > this.options.maxBytes) return;
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    this.entries.set(key, cached);
    this.bytes += cached.bytes;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.options.maxBytes) break;
      this.remove(k, e);
    }
  }

  stats(): ResponseCacheStats {
    return { ...this.counts, entries: this.entries.size, bytes: this.bytes, live: this.live };
  }

  private valid(c: Pick<Cached, 'deps' | 'snapshot' | 'at'>): boolean {
    return (
      this.live &&
      c.snapshot.epoch === this.epoch &&
      this.now() - c.at <= this.options.maxAgeMs &&
      c.deps.every((t, i) => this.generations.get(t) === c.snapshot.generations[i])
    );
  }

  private remove(key: string, c: Cached): void {
    this.entries.delete(key);
    this.bytes -= c.bytes;
  }
}

/** Tables a read statement may name, each with the entity types whose changes change what it reads there. */
const TABLES: readonly { pattern: RegExp; types: readonly EntityType[] }[] = MODEL.flatMap((e) => {
  const own = { pattern: new RegExp(`\\b${e.view}\\b`), types: [e.name] as EntityType[] };
  if (!e.keptCounts) return [own];
  // A kept count changes with the rows it counts (their refresh is in the feed).
  const counted = relationsOf(e).flatMap(({ field }) => (field.kind === 'count' && field.kept ? [field.entity as EntityType] : []));
  return [own, { pattern: new RegExp(`\\b${e.keptCounts.table}\\b`), types: [e.name, ...counted] }];
});

/**
 * The entity types a read statement depends on (see the comment at the top), or null when it reads
 * something the feed does not tell about (sync_log, for syncMetrics): not cached.
 */
export function dependenciesOf(statement: string, readsOnlyProjections: boolean): readonly EntityType[] | null {
  if (!readsOnlyProjections) return null;
  const types = new Set<EntityType>();
  for (const t of TABLES) if (t.pattern.test(statement)) for (const type of t.types) types.add(type);
  return types.size ? ENTITY_TYPES.filter((t) => types.has(t)) : null;
}
