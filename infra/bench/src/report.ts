import { DOC_LABELS, type DocId, type SystemId } from './documents';
import { machineLine, type Machine } from './machine';
import type { StatementCounts } from './pg-proxy';
import { SYSTEMS, SYSTEM_ORDER } from './systems';
import type { WrkResult } from './wrk';

/** One measured cell: a system, a document, a number of connections. */
export interface Cell extends WrkResult {
  connections: number;
  /** Share of the machine's CPU (0..1) used by work outside the benchmark during the measured run. */
  otherCpu?: number;
  /**
   * CPU time per request during the measured run, in µs: the system's process, and the PostgreSQL
   * backends of the benchmark's database (the system's pool, and for ours the relay beside the QUEUED load).
   */
  cpuPerRequest?: { server: number; database: number };
}

/** Everything measured for one system and one document. */
export interface SystemDocResult {
  system: SystemId;
  doc: DocId;
  /** Why the system could not be measured on this document. */
  error?: string;
  /** The system has no GraphQL endpoint at all (HTTP 404): reported, not a failure. */
  absent?: boolean;
  /** SQL statements per request (CommandComplete messages; BEGIN/COMMIT included), measured sequentially. */
  statementsPerRequest?: number;
  /** Queries and Executes sent per request (round trips that run SQL). */
  roundTripsPerRequest?: number;
  /** For writes: statements of CreatePost and of AddComment apart. */
  statementsByOperation?: Record<string, number>;
  countDetail?: StatementCounts;
  /** req/s of every round (with --repeat, the cells keep only the best one). */
  rounds?: { connections: number; round: number; rps: number }[];
  /** Bytes of the answer's body (the last one checked). */
  answerBytes?: number;
  note?: string;
  cells: Cell[];
}

/** The cached API read at some connections while one client writes at a steady rate (see main.ts). */
export interface CacheWritesResult {
  doc: DocId;
  connections: number;
  /** The rate asked for, and the one achieved during the measured run. */
  writeRate: number;
  writesPerSecond: number;
  writes: number;
  failedWrites: number;
  /** wrk's figures for the reads during the measured run. */
  cell?: Cell;
  /** req/s of the same document and connections in the read phase (no writes), when measured. */
  rpsWithoutWrites?: number;
  /** The API's lookup counters, diffed over the measured run (the writer's check reads included). */
  hits: number;
  misses: number;
  /** Check reads (one after each acknowledged write) sent during the measured run. */
  checkReadsInRun: number;
  /** Reads sent after a write's answer and compared with the data computed from tb_* at that moment. */
  checks: number;
  wrong: string[];
  error?: string;
}

export interface Target {
  name: string;
  doc: DocId;
  connections?: number;
  value?: number;
  required: number;
  /** 'ratio': value is ours/theirs (or ours/ceiling); 'statements': value must equal required. */
  kind: 'ratio' | 'statements';
  status: 'met' | 'missed' | 'not measured';
  detail: string;
}

export interface RunReport {
  startedAt: string;
  finishedAt: string;
  smoke: boolean;
  machine: Machine;
  dataset: { users: number; posts: number; comments: number; postBytes: number };
  settings: { durationS: number; warmupS: number; repeat: number; connections: number[]; countRequests: number; poolMax: number };
  api: string;
  notes: string[];
  results: SystemDocResult[];
  cacheUnderWrites: CacheWritesResult[];
  targets: Target[];
}

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || !Number.isFinite(n)
    ? '—'
    : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (n: number | undefined): string => (n === undefined ? '—' : n < 10 ? fmt(n, 2) : n < 100 ? fmt(n, 1) : fmt(n, 0));
const ratio = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : `${n >= 10 ? fmt(n, 0) : fmt(n, 2)}x`);
const statements = (n: number | undefined): string => (n === undefined ? '—' : Number.isInteger(n) ? String(n) : fmt(n, 1));

function cellOf(results: SystemDocResult[], system: SystemId, doc: DocId, connections: number): Cell | undefined {
  return results.find((r) => r.system === system && r.doc === doc)?.cells.find((c) => c.connections === connections);
}

function errorsOf(c: Cell): number {
  const e = c.errors;
  return e.connect + e.read + e.write + e.timeout + e.status + e.graphql;
}

/** ours req/s ÷ this system's req/s for the same document (writes: against ours INLINE and QUEUED). */
function ratioText(results: SystemDocResult[], r: SystemDocResult, c: Cell): string {
  if (r.system === 'ours')
    return r.doc === 'writes-queued'
      ? `${ratio(c.rps / (cellOf(results, 'ours', 'writes-inline', c.connections)?.rps ?? NaN))} of INLINE`
      : '1x';
  if (r.doc === 'writes') {
    const inline = cellOf(results, 'ours', 'writes-inline', c.connections);
    const queued = cellOf(results, 'ours', 'writes-queued', c.connections);
    if (!inline && !queued) return '—';
    return `INLINE ${ratio((inline?.rps ?? NaN) / c.rps)}, QUEUED ${ratio((queued?.rps ?? NaN) / c.rps)}`;
  }
  const ours = cellOf(results, 'ours', r.doc, c.connections);
  return ours ? ratio(ours.rps / c.rps) : '—';
}

const other = (c: Cell): string => (c.otherCpu === undefined ? '—' : `${Math.round(c.otherCpu * 100)}%`);
const cpu = (c: Cell): string => (c.cpuPerRequest ? `${fmt(c.cpuPerRequest.server)} + ${fmt(c.cpuPerRequest.database)}` : '—');

const DOC_ORDER: DocId[] = ['recent5', 'recent50', 'user', 'writes-inline', 'writes-queued', 'writes'];

export function resultsTable(results: SystemDocResult[], connections: number[]): string {
  const lines = [
    '| document | conns | system | req/s | p50 ms | p99 ms | SQL statements / request | ours ÷ this (req/s) | ' +
      'CPU µs / request (server + PostgreSQL) | other work |',
    '|---|---:|---|---:|---:|---:|---:|---|---:|---:|',
  ];
  const groups: DocId[][] = [['recent5'], ['recent50'], ['user'], ['writes-inline', 'writes-queued', 'writes']];
  for (const group of groups) {
    const rows = results
      .filter((r) => group.includes(r.doc))
      .sort(
        (a, b) => SYSTEM_ORDER.indexOf(a.system) - SYSTEM_ORDER.indexOf(b.system) || DOC_ORDER.indexOf(a.doc) - DOC_ORDER.indexOf(b.doc),
      );
    if (!rows.length) continue;
    const docLabel = group.length > 1 ? 'write mix (CreatePost + AddComment)' : DOC_LABELS[group[0]!];
    const label = (r: SystemDocResult) =>
      `${SYSTEMS[r.system].label}${r.doc === 'writes-inline' ? ', INLINE' : r.doc === 'writes-queued' ? ', QUEUED' : ''}`;
    for (const r of rows.filter((x) => x.error)) {
      lines.push(
        `| ${docLabel} | — | ${label(r)} | — | — | — | ${statements(r.statementsPerRequest)} | ` +
          `${r.absent ? 'not available' : 'error'}: ${r.error!.replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 160)} | | |`,
      );
    }
    for (const c of connections) {
      for (const r of rows) {
        const cell = r.cells.find((x) => x.connections === c);
        if (!cell) continue;
        const errs = errorsOf(cell);
        const stmt =
          r.statementsByOperation && Object.keys(r.statementsByOperation).length
            ? `${statements(r.statementsPerRequest)} (${Object.entries(r.statementsByOperation)
                .map(([k, v]) => `${k} ${statements(v)}`)
                .join(', ')})`
            : statements(r.statementsPerRequest);
        if (cell.requests === 0) {
          // Every request took longer than the measured run: no latency sample at all.
          const over = `> ${fmt(cell.durationS * 1000)}`;
          lines.push(
            `| ${docLabel} | ${c} | ${label(r)} | 0 | ${over} | ${over} | ${stmt} | ` +
              `no request completed in the ${fmt(cell.durationS)} s run | — | ${other(cell)} |`,
          );
          continue;
        }
        lines.push(
          `| ${docLabel} | ${c} | ${label(r)} | ${fmt(cell.rps)} | ${ms(cell.p50Ms)} | ${ms(cell.p99Ms)} | ${stmt} | ` +
            `${ratioText(results, r, cell)}${errs ? ` (${errs} failed requests)` : ''} | ${cpu(cell)} | ${other(cell)} |`,
        );
      }
    }
  }
  return lines.join('\n');
}

/**
 * The cached API's req/s as a share of the constant server's, round by round (the two took their
 * turns within minutes of each other in each round, so a slow spell of the shared machine tends to
 * fall on both): one share per round in which both were measured.
 */
export function pairedShares(results: SystemDocResult[], doc: DocId, connections: number): number[] {
  const rounds = (system: SystemId) =>
    new Map(
      (results.find((x) => x.system === system && x.doc === doc)?.rounds ?? [])
        .filter((x) => x.connections === connections)
        .map((x) => [x.round, x.rps]),
    );
  const cached = rounds('ours-cached');
  const limit = rounds('constant');
  return [...cached].flatMap(([round, rps]) => {
    const l = limit.get(round);
    return l ? [rps / l] : [];
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** The connection count of the response cache's target. */
export const CACHE_TARGET_CONNECTIONS = 16;

/**
 * The issue's targets: for GetRecentPosts, ours (cache off) against the peers and the ceiling; the
 * cached API against the constant server; one statement per read for every read document.
 */
export function evaluateTargets(results: SystemDocResult[], connections: number[]): Target[] {
  const targets: Target[] = [];
  const versus: { system: SystemId; required: number; name: string }[] = [
    { system: 'postgraphile', required: 3, name: 'ours >= 3x PostGraphile 5' },
    { system: 'apollo', required: 10, name: 'ours >= 10x resolver per field (N+1)' },
    { system: 'bare', required: 0.7, name: 'ours >= 70% of the bare ceiling' },
  ];
  for (const doc of ['recent5', 'recent50'] as DocId[]) {
    for (const v of versus) {
      for (const c of connections) {
        const ours = cellOf(results, 'ours', doc, c);
        const theirs = cellOf(results, v.system, doc, c);
        if (!ours || !theirs) {
          targets.push({
            name: v.name,
            doc,
            connections: c,
            required: v.required,
            kind: 'ratio',
            status: 'not measured',
            detail: `${ours ? '' : 'ours'}${!ours && !theirs ? ' and ' : ''}${theirs ? '' : SYSTEMS[v.system].label} not measured`,
          });
          continue;
        }
        const value = ours.rps / theirs.rps;
        const met = value >= v.required;
        if (theirs.requests === 0) {
          targets.push({
            name: v.name,
            doc,
            connections: c,
            value,
            required: v.required,
            kind: 'ratio',
            status: 'met',
            detail: `no request of ${SYSTEMS[v.system].label} completed in ${fmt(theirs.durationS)} s; ours ${fmt(ours.rps)} req/s`,
          });
          continue;
        }
        targets.push({
          name: v.name,
          doc,
          connections: c,
          value,
          required: v.required,
          kind: 'ratio',
          status: met ? 'met' : 'missed',
          detail: met
            ? `${ratio(value)}`
            : `${ratio(value)}: short by ${fmt((1 - value / v.required) * 100)}% ` +
              `(ours would need ${fmt(theirs.rps * v.required)} req/s instead of ${fmt(ours.rps)})`,
        });
      }
    }
  }
  // The response cache: GetRecentPosts (limit 5) and GetUser at 16 connections, at least half of
  // what a server answering one constant text of the same order of size does (the issue's target).
  for (const doc of ['recent5', 'user'] as DocId[]) {
    const c = CACHE_TARGET_CONNECTIONS;
    const name = 'ours, response cache >= 50% of the constant 3 KB limit';
    const cached = cellOf(results, 'ours-cached', doc, c);
    const limit = cellOf(results, 'constant', doc, c);
    if (!cached || !limit || !limit.rps) {
      targets.push({
        name,
        doc,
        connections: c,
        required: 0.5,
        kind: 'ratio',
        status: 'not measured',
        detail: connections.includes(c)
          ? `${cached ? '' : 'ours, response cache'}${!cached && !limit ? ' and ' : ''}${limit ? '' : 'the constant server'} not measured`
          : `measured at ${c} connections only`,
      });
      continue;
    }
    // With several rounds, the median of the rounds' own shares decides (see pairedShares); the
    // best rounds of the two, which may come from different rounds, are shown beside it.
    const shares = pairedShares(results, doc, c);
    const best = cached.rps / limit.rps;
    const value = shares.length > 1 ? median(shares) : best;
    const pct = (x: number) => `${fmt(x * 100)}%`;
    const detail =
      shares.length > 1
        ? `${pct(value)}, the median of ${shares.length} rounds (${shares.map(pct).join(', ')}); ` +
          `best rounds ${fmt(cached.rps)} of ${fmt(limit.rps)} req/s, ${pct(best)}`
        : `${pct(value)} (${fmt(cached.rps)} of ${fmt(limit.rps)} req/s)` +
          `${value >= 0.5 ? '' : `: short by ${fmt(limit.rps * 0.5 - cached.rps)} req/s`}`;
    targets.push({ name, doc, connections: c, value, required: 0.5, kind: 'ratio', status: value >= 0.5 ? 'met' : 'missed', detail });
  }
  for (const doc of ['recent5', 'recent50', 'user'] as DocId[]) {
    const r = results.find((x) => x.system === 'ours' && x.doc === doc);
    const value = r?.error ? undefined : r?.statementsPerRequest;
    targets.push({
      name: 'exactly one SQL statement per read request',
      doc,
      value,
      required: 1,
      kind: 'statements',
      status: value === undefined ? 'not measured' : value === 1 ? 'met' : 'missed',
      detail: value === undefined ? 'ours not measured' : `${statements(value)} per request`,
    });
  }
  return targets;
}

/**
 * The cached API's req/s against every other row's on the same document and connections, side by
 * side: "x" is how many times the other's req/s; against the constant server, the share of it.
 */
export function cacheRatiosTable(results: SystemDocResult[], connections: number[]): string {
  const lines = [
    '| document | conns | ours, response cache (req/s) | ÷ ours, cache off | ÷ bare ceiling | ÷ PostGraphile 5 | ' +
      '÷ Apollo + DataLoader | of the constant 3 KB limit | answer bytes (constant) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const versus = (doc: DocId, system: SystemId, c: number, cached: Cell) => {
    const other = cellOf(results, system, doc, c);
    return other && other.rps > 0 ? ratio(cached.rps / other.rps) : '—';
  };
  for (const doc of ['recent5', 'recent50', 'user'] as DocId[]) {
    const r = results.find((x) => x.system === 'ours-cached' && x.doc === doc);
    if (!r) continue;
    const bytes = `${fmt(r.answerBytes)} (${fmt(results.find((x) => x.system === 'constant' && x.doc === doc)?.answerBytes)})`;
    for (const c of connections) {
      const cached = r.cells.find((x) => x.connections === c);
      if (!cached) continue;
      const limit = cellOf(results, 'constant', doc, c);
      const shares = pairedShares(results, doc, c);
      const ofLimit =
        limit && limit.rps > 0
          ? `${fmt((cached.rps / limit.rps) * 100)}%` +
            `${shares.length > 1 ? ` (rounds: ${shares.map((x) => `${fmt(x * 100)}%`).join(', ')})` : ''}`
          : '—';
      lines.push(
        `| ${DOC_LABELS[doc]} | ${c} | ${fmt(cached.rps)} | ${versus(doc, 'ours', c, cached)} | ${versus(doc, 'bare', c, cached)} | ` +
          `${versus(doc, 'postgraphile', c, cached)} | ` +
          `${versus(doc, 'apollo-dataloader', c, cached)} | ${ofLimit} | ${bytes} |`,
      );
    }
  }
  return lines.length > 2 ? lines.join('\n') : '';
}

export function cacheWritesTable(rows: CacheWritesResult[]): string {
  if (!rows.length) return '';
  const lines = [
    '| document | conns | writes/s (asked) | req/s under writes | req/s, no writes | p50 ms | p99 ms | ' +
      'cache hits | misses | hit ratio | reads checked after a write | other work |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
  ];
  for (const r of rows) {
    const c = r.cell;
    const checks = r.wrong.length ? `${r.wrong.length} of ${fmt(r.checks)} WRONG` : `${fmt(r.checks)}, all correct`;
    if (r.error || !c) {
      lines.push(
        `| ${DOC_LABELS[r.doc]} | ${r.connections} | — | — | — | — | — | — | — | — | ` +
          `error: ${(r.error ?? 'not measured').replace(/\|/g, '/').slice(0, 160)} | |`,
      );
      continue;
    }
    const failed = errorsOf(c) + r.failedWrites;
    lines.push(
      `| ${DOC_LABELS[r.doc]} | ${r.connections} | ${fmt(r.writesPerSecond, 1)} (${fmt(r.writeRate)}) | ` +
        `${fmt(c.rps)}${failed ? ` (${failed} failed requests)` : ''} | ${fmt(r.rpsWithoutWrites)} | ` +
        `${ms(c.p50Ms)} | ${ms(c.p99Ms)} | ${fmt(r.hits)} | ${fmt(r.misses)} | ` +
        `${r.hits + r.misses ? `${fmt((r.hits / (r.hits + r.misses)) * 100, 1)}%` : '—'} | ${checks} | ${other(c)} |`,
    );
  }
  return lines.join('\n');
}

export function targetsTable(targets: Target[]): string {
  const lines = ['| target | document | conns | result | |', '|---|---|---:|---|---|'];
  for (const t of targets) {
    lines.push(`| ${t.name} | ${DOC_LABELS[t.doc]} | ${t.connections ?? '—'} | ${t.detail} | ${t.status} |`);
  }
  return lines.join('\n');
}

const section = (title: string, table: string): string[] => (table ? [title, '', table, ''] : []);

export function markdownReport(report: RunReport): string {
  const d = report.dataset;
  return [
    `### GraphQL benchmark${report.smoke ? ' (smoke)' : ''}, ${report.finishedAt.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Machine: ${machineLine(report.machine)}.`,
    `Dataset: ${fmt(d.users)} users, ${fmt(d.posts)} posts (~${fmt(d.postBytes)} B of content each), ${fmt(d.comments)} comments. ` +
      `Each cell: ${report.settings.warmupS} s warm-up, then ${report.settings.durationS} s measured with wrk (1 thread); ` +
      `every system has a pool of ${report.settings.poolMax} PostgreSQL connections. Our API: ${report.api}.`,
    '',
    resultsTable(report.results, report.settings.connections),
    '',
    ...section(
      '**The response cache against the other rows** (req/s of ours, response cache, divided by theirs)',
      cacheRatiosTable(report.results, report.settings.connections),
    ),
    ...section(
      '**The response cache under writes** (ours, response cache, read while one client writes INLINE at a steady rate; ' +
        'hits and misses from its Prometheus counters over the measured run)',
      cacheWritesTable(report.cacheUnderWrites),
    ),
    '**Targets**',
    '',
    targetsTable(report.targets),
    '',
    ...report.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}
