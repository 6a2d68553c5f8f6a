import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { connectClient } from '../db/pool';
import type { Logger } from '../log/logger';
import { silentLogger } from '../log/logger';
import { backoffMs, sleep } from '../util/wait';
import { ENTITY_TYPES, isEntityType, type EntityType } from '../model';

/**
 * The change feed: after a refresh of projections commits, the process that made it tells every
 * process which tv_* rows it refreshed, through PostgreSQL's LISTEN/NOTIFY on FEED_CHANNEL.
 *
 * Not NOTIFY inside the writers' transactions: a transaction that notifies holds a database-wide
 * lock from its commit's start to its end, so every writer would wait for every other's commit
 * (writes stalled near 120/s here). A process's publisher sends instead, after the commit, from a
 * connection of its own with synchronous_commit off (a notification needs no disk flush), one send
 * at a time and at most one every SEND_EVERY_MS: what commits meanwhile goes with the next send, so
 * the sends stay few however fast the writes come (each send costs a transaction on the sender's
 * connection and a delivery to every listener; at 1,700 writes/s, one send per write cost about 35 µs
 * of PostgreSQL's CPU per write). The first send after a quiet spell leaves at once. A message is
 * delivered to each listener once, and the messages of one sender in the order it sent them.
 *
 * What a listener cannot learn from the feed, it is told as a loss (ChangeListener's onLost): its
 * connection ended, or a probe it sends itself every PROBE_EVERY_MS did not come back within
 * PROBE_TIMEOUT_MS (a connection that died silently). A process holding anything derived from the
 * projections (the response cache, subscriptions) drops or re-reads it then. One case is not seen:
 * a process that dies between a commit and its send (milliseconds) loses that message; the
 * response cache bounds what this can cost by the age of its entries (RESPONSE_CACHE_MAX_AGE_S).
 */
export const FEED_CHANNEL = 'blog_sync_changes';

/** Which rows of each entity type were refreshed: their ids, or '*' for "any" (too many to list). */
export type Changes = Partial<Record<EntityType, readonly string[] | '*'>>;

export interface ChangeMessage {
  /** The sending process (its publisher's id). */
  from: string;
  /** When the sender's refreshes committed (its clock, ms since the epoch): the feed's delay is measured from it. */
  at: number;
  changes: Changes;
}

/** NOTIFY payloads must stay under 8000 bytes. */
const MAX_PAYLOAD = 7500;
/** 36 characters and the quotes and comma around each id in a payload. */
const ID_BYTES = 39;

/** The shortest time between the starts of two sends of one publisher. */
export const SEND_EVERY_MS = 5;

export const PROBE_EVERY_MS = 1000;
export const PROBE_TIMEOUT_MS = 3000;

/** The payloads of a message: one, or several when its ids do not fit in one. */
export function payloads(message: ChangeMessage): string[] {
  const whole = JSON.stringify(message);
  if (whole.length <= MAX_PAYLOAD) return [whole];
  const out: string[] = [];
  const room = Math.floor((MAX_PAYLOAD - 200) / ID_BYTES);
  for (const type of ENTITY_TYPES) {
    const ids = message.changes[type];
    if (!ids) continue;
    if (ids === '*') out.push(JSON.stringify({ ...message, changes: { [type]: '*' } }));
    else for (let i = 0; i < ids.length; i += room) out.push(JSON.stringify({ ...message, changes: { [type]: ids.slice(i, i + room) } }));
  }
  return out;
}

/** A payload as a message, or undefined when it is not one (another sender on the channel). */
export function parseMessage(payload: string): ChangeMessage | undefined {
  let m: unknown;
  try {
    m = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!m || typeof m !== 'object') return undefined;
  const { from, at, changes } = m as Record<string, unknown>;
  if (typeof from !== 'string' || typeof at !== 'number' || !changes || typeof changes !== 'object') return undefined;
  const out: Record<string, readonly string[] | '*'> = {};
  for (const [type, ids] of Object.entries(changes as Record<string, unknown>)) {
    if (!isEntityType(type)) continue;
    if (ids === '*') out[type] = '*';
    else if (Array.isArray(ids) && ids.every((id) => typeof id === 'string')) out[type] = ids as string[];
  }
  return { from, at, changes: out as Changes };
}

/** Adds `more` to `into` ('*' absorbs ids). */
export function mergeChanges(into: Map<EntityType, Set<string> | '*'>, more: Changes): void {
  for (const type of ENTITY_TYPES) {
    const ids = more[type];
    if (!ids || (ids !== '*' && !ids.length)) continue;
    const held = into.get(type);
    if (ids === '*' || held === '*') into.set(type, '*');
    else if (held) for (const id of ids) held.add(id);
    else into.set(type, new Set(ids));
  }
}

const PUBLISH = `SELECT pg_notify('${FEED_CHANNEL}', p) FROM unnest($1::text[]) AS p`;

/** Sends the changes this process commits (see the comment at the top). */
export class ChangePublisher {
  readonly id = randomBytes(6).toString('hex');
  private pending = new Map<EntityType, Set<string> | '*'>();
  private pendingAt = 0;
  /** When the last send started (performance.now(): monotonic, below the millisecond). */
  private sentAt = -Infinity;
  private sending?: Promise<void>;
  private client?: Promise<pg.Client>;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly options: { applicationName: string; logger?: Logger } = { applicationName: 'blog-feed' },
  ) {}

  /** Tells every listener, soon, that these rows were refreshed (call it after they committed). */
  publish(changes: Changes): void {
    if (this.closed) return;
    if (!this.pending.size) this.pendingAt = Date.now();
    mergeChanges(this.pending, changes);
    if (this.pending.size) this.sending ??= this.send();
  }

  /** Resolves once what was published so far has been sent. */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    const client = await this.client?.catch(() => undefined);
    await client?.end().catch(() => undefined);
  }

  private async send(): Promise<void> {
    try {
      while (this.pending.size) {
        // Checked again after each sleep: a timer may fire up to a millisecond early (Node counts
        // timers in whole milliseconds), which would let sends come closer than SEND_EVERY_MS.
        for (let wait = this.untilNextSend(); wait > 0; wait = this.untilNextSend()) await sleep(wait);
        this.sentAt = performance.now();
        const batch = this.pending;
        const at = this.pendingAt;
        this.pending = new Map();
        const changes = Object.fromEntries([...batch].map(([t, ids]) => [t, ids === '*' ? '*' : [...ids]])) as Changes;
        const texts = payloads({ from: this.id, at, changes });
        for (let attempt = 1; ; attempt += 1) {
          try {
            const client = await this.connection();
            // Named: parsed once per connection, not for every message (it is sent after most writes).
            await client.query({ name: 'blog_feed_publish', text: PUBLISH, values: [texts] });
            break;
          } catch (err) {
            this.client = undefined;
            // Listeners on a server this process cannot reach lose their connection too (and drop what they hold).
            if (attempt >= 2) {
              (this.options.logger ?? silentLogger).error({ err }, 'could not send changes to the change feed');
              break;
            }
          }
        }
      }
    } finally {
      this.sending = undefined;
    }
  }

  private untilNextSend(): number {
    return this.sentAt + SEND_EVERY_MS - performance.now();
  }

  private connection(): Promise<pg.Client> {
    this.client ??= (async () => {
      const client = await connectClient({ connectionString: this.url, application_name: this.options.applicationName });
      client.on('error', () => (this.client = undefined));
      await client.query('SET synchronous_commit = off');
      return client;
    })();
    return this.client;
  }
}

export interface ListenerOptions {
  applicationName: string;
  logger?: Logger;
  /** A message from the feed (this process's own included). */
  onChange: (message: ChangeMessage) => void;
  /** The feed may have lost messages from here on: drop or re-read what was derived. */
  onLost: (reason: string) => void;
  /** Listening (again): messages from here on arrive. */
  onListening?: () => void;
}

/**
 * Listens to the feed on a connection of its own, reconnecting with a backoff when it is lost; a
 * probe every PROBE_EVERY_MS checks that notifications still arrive (see the comment at the top).
 */
export class ChangeListener {
  private client?: pg.Client;
  private closed = false;
  private listening = false;
  private probeTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private probeSentAt = 0;
  private probeSeq = 0;
  private readonly probeTag = `probe-${randomBytes(6).toString('hex')}`;
  private failures = 0;

  constructor(
    private readonly url: string,
    private readonly options: ListenerOptions,
  ) {}

  /** Whether messages arrive now (connected, listening, the last probe answered in time). */
  get live(): boolean {
    return this.listening;
  }

  /** Connects and listens; rejects when the first connection fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.probeTimer);
    clearTimeout(this.retryTimer);
    this.listening = false;
    await this.client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = await connectClient({ connectionString: this.url, application_name: this.options.applicationName, keepAlive: true });
    if (this.closed) {
      await client.end();
      return;
    }
    this.client = client;
    client.on('notification', (n) => {
      if (n.channel !== FEED_CHANNEL || !n.payload) return;
      if (n.payload.startsWith(this.probeTag)) {
        this.probeSentAt = 0;
        return;
      }
      const message = parseMessage(n.payload);
      if (message) this.options.onChange(message);
    });
    client.on('error', (err) => this.client === client && this.lost(`the change feed's connection failed: ${err.message}`));
    client.on('end', () => this.client === client && this.lost("the change feed's connection ended"));
    await client.query(`LISTEN ${FEED_CHANNEL}`);
    this.listening = true;
    this.failures = 0;
    this.probeSentAt = 0;
    this.options.onListening?.();
    clearInterval(this.probeTimer);
    this.probeTimer = setInterval(() => this.probe(), PROBE_EVERY_MS);
    this.probeTimer.unref();
  }

  private probe(): void {
    const client = this.client;
    if (!client || !this.listening) return;
    if (this.probeSentAt && Date.now() - this.probeSentAt > PROBE_TIMEOUT_MS) {
      this.lost(`no notification came back within ${PROBE_TIMEOUT_MS} ms`);
      return;
    }
    if (this.probeSentAt) return;
    this.probeSentAt = Date.now();
    client.query('SELECT pg_notify($1, $2)', [FEED_CHANNEL, `${this.probeTag}-${++this.probeSeq}`]).catch(() => undefined);
  }

  private lost(reason: string): void {
    const client = this.client;
    this.client = undefined;
    const wasListening = this.listening;
    this.listening = false;
    clearInterval(this.probeTimer);
    client?.end().catch(() => undefined);
    if (this.closed) return;
    if (wasListening) {
      (this.options.logger ?? silentLogger).warn({ reason }, 'change feed lost: what was derived from it is dropped; reconnecting');
      this.options.onLost(reason);
    }
    this.retry();
  }

  /** After a first connection that failed: keep trying in the background. */
  retryLater(): void {
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = backoffMs(this.failures + 1, 100, 5000);
    this.failures += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().catch(() => this.retry());
    }, delay);
    this.retryTimer.unref();
  }
}
