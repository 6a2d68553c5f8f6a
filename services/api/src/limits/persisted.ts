import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError } from 'graphql';

/**
 * Persisted (allow-listed) operations (PERSISTED_OPERATIONS, PERSISTED_OPERATIONS_FILE):
 *  - `off` (default): any document; Apollo Server's own automatic persisted queries work as usual.
 *  - `allow`: documents from the list can be sent by hash (APQ style:
 *    `extensions.persistedQuery.sha256Hash`, version 1, no `query`), full documents are accepted
 *    too. Nothing is ever added to the list by a request.
 *  - `only`: the same, and a document whose sha256 is not in the list is refused
 *    (OPERATION_NOT_ALLOWED, HTTP 403) before it is parsed.
 * An unknown hash is PERSISTED_QUERY_NOT_FOUND (HTTP 200, as Apollo Server and APQ clients expect).
 *
 * The list is a JSON object mapping the sha256 (hex) of each document's exact text to the text
 * (`npm run persisted-operations -w @blog/api` writes one; see cli/persisted-operations.ts). It is
 * loaded and checked once at start: a malformed file or a hash that does not match its document
 * stops the process with a message naming it.
 *
 * Both paths: POST /graphql resolves hashes and checks the list before the compiled read path
 * (`resolve`), so a persisted read is still answered by one statement without Apollo; Apollo
 * Server (GET, and whatever the fast path hands it) gets the list as a read-only APQ cache and, in
 * `only` mode, a plugin that refuses any other document.
 */
export type PersistedMode = 'off' | 'allow' | 'only';
export const PERSISTED_MODES = ['off', 'allow', 'only'] as const;

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** A list file that is missing, unreadable or malformed: a configuration error (the API exits 2). */
export class PersistedListError extends Error {
  override readonly name = 'PersistedListError';
}

/** Reads and checks a list file: `{ "<sha256 hex>": "<document>" }`. */
export function loadPersistedList(file: string): Map<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new PersistedListError(
      `PERSISTED_OPERATIONS_FILE: cannot read ${file} (${reason}); write the list with ` +
        '`npm run persisted-operations -w @blog/api -- --seed --out <file>` or set the variable to where it is.',
      { cause: err },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new PersistedListError(`PERSISTED_OPERATIONS_FILE ${file}: ${(err as Error).message}`, { cause: err });
  }
  return persistedList(parsed, file);
}

export function persistedList(parsed: unknown, origin = 'the list'): Map<string, string> {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new PersistedListError(`${origin}: must be a JSON object mapping sha256 hashes to GraphQL documents`);
  }
  const list = new Map<string, string>();
  for (const [hash, doc] of Object.entries(parsed)) {
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new PersistedListError(`${origin}: key "${hash}" is not a lowercase sha256 hex digest`);
    if (typeof doc !== 'string' || !doc.trim()) throw new PersistedListError(`${origin}: the value of ${hash} is not a GraphQL document`);
    if (sha256(doc) !== hash) throw new PersistedListError(`${origin}: ${hash} is not the sha256 of its document (regenerate the file)`);
    list.set(hash, doc);
  }
  return list;
}

export type Resolved = { body: unknown } | { status: number; code: string; message: string };

interface PersistedExtension {
  version?: unknown;
  sha256Hash?: unknown;
}

export class PersistedOperations {
  constructor(
    readonly mode: PersistedMode,
    private readonly list: Map<string, string>,
  ) {}

  get size(): number {
    return this.list.size;
  }

  has(hash: string): boolean {
    return this.list.has(hash);
  }

  /**
   * A POST body with its persisted hash replaced by the document (so that the compiled read path
   * can take it), or the error to answer. Bodies it cannot make sense of go on unchanged: Apollo
   * Server answers them with its own errors.
   */
  resolve(body: unknown): Resolved {
    if (this.mode === 'off' || body === null || typeof body !== 'object' || Array.isArray(body)) return { body };
    const b = body as { query?: unknown; extensions?: unknown };
    const ext = b.extensions && typeof b.extensions === 'object' ? (b.extensions as { persistedQuery?: PersistedExtension }) : undefined;
    const pq = ext?.persistedQuery;
    if (pq && typeof pq === 'object' && pq.version === 1 && typeof pq.sha256Hash === 'string') {
      const { persistedQuery: _pq, ...otherExtensions } = ext;
      // Without the persistedQuery extension (no `extensions` key at all when nothing else is left),
      // the compiled read path can take the request.
      const { extensions: _ext, ...withoutExtensions } = b;
      const rest = Object.keys(otherExtensions).length ? { ...withoutExtensions, extensions: otherExtensions } : withoutExtensions;
      if (b.query === undefined || b.query === null) {
        const doc = this.list.get(pq.sha256Hash);
        if (!doc)
          return {
            status: 200,
            code: 'PERSISTED_QUERY_NOT_FOUND',
            message: 'PersistedQueryNotFound: no operation with that sha256Hash is in the list.',
          };
        return { body: { ...rest, query: doc } };
      }
      // Both a document and a hash: they must agree (Apollo Server answers the mismatch).
      if (typeof b.query !== 'string' || sha256(b.query) !== pq.sha256Hash) return { body };
      return this.checkDocument(b.query, rest);
    }
    if (typeof b.query === 'string') return this.checkDocument(b.query, body);
    return { body };
  }

  private checkDocument(query: string, body: unknown): Resolved {
    if (this.mode === 'only' && !this.list.has(sha256(query))) return notAllowed();
    return { body };
  }

  /** For Apollo Server's `persistedQueries.cache`: lookups in the list; registrations ignored. */
  apolloCache(): { get(key: string): Promise<string | undefined>; set(): Promise<void>; delete(): Promise<boolean> } {
    return {
      get: async (key: string) => this.list.get(key.startsWith('apq:') ? key.slice(4) : key),
      set: async () => undefined,
      delete: async () => false,
    };
  }

  /** In `only` mode, refuses every document Apollo Server receives that is not in the list. */
  plugin<C extends object>(): ApolloServerPlugin<C> {
    const list = this.list;
    const only = this.mode === 'only';
    return {
      async requestDidStart() {
        if (!only) return;
        return {
          // After parsing and validation (an error thrown earlier would be a 500), before execution.
          async didResolveOperation(ctx) {
            if (!list.has(sha256(ctx.source))) {
              const e = notAllowed();
              throw new GraphQLError(e.message, { extensions: { code: e.code, http: { status: e.status } } });
            }
          },
        };
      },
    };
  }
}

function notAllowed(): { status: number; code: string; message: string } {
  return {
    status: 403,
    code: 'OPERATION_NOT_ALLOWED',
    message: 'This server only runs persisted operations (PERSISTED_OPERATIONS=only); the document is not in its list.',
  };
}
