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
  note?: string;
  cells: Cell[];
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
  targets: Target[];
}

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || !Number.isFinite(n) ? '—' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
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
  if (r.system === 'ours') return r.doc === 'writes-queued' ? `${ratio(c.rps / (cellOf(results, 'ours', 'writes-inline', c.connections)?.rps ?? NaN))} of INLINE` : '1x';
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

const DOC_ORDER: DocId[] = ['recent5', 'recent50', 'user', 'writes-inline', 'writes-queued', 'writes'];

export function resultsTable(results: SystemDocResult[], connections: number[]): string {
  const lines = [
    '| document | conns | system | req/s | p50 ms | p99 ms | SQL statements / request | ours ÷ this (req/s) | other work |',
    '|---|---:|---|---:|---:|---:|---:|---|---:|',
  ];
  const groups: DocId[][] = [['recent5'], ['recent50'], ['user'], ['writes-inline', 'writes-queued', 'writes']];
  for (const group of groups) {
    const rows = results
      .filter((r) => group.includes(r.doc))
      .sort((a, b) => SYSTEM_ORDER.indexOf(a.system) - SYSTEM_ORDER.indexOf(b.system) || DOC_ORDER.indexOf(a.doc) - DOC_ORDER.indexOf(b.doc));
    if (!rows.length) continue;
    const docLabel = group.length > 1 ? 'write mix (CreatePost + AddComment)' : DOC_LABELS[group[0]!];
    const label = (r: SystemDocResult) =>
      `${SYSTEMS[r.system].label}${r.doc === 'writes-inline' ? ', INLINE' : r.doc === 'writes-queued' ? ', QUEUED' : ''}`;
    for (const r of rows.filter((x) => x.error)) {
      lines.push(`| ${docLabel} | — | ${label(r)} | — | — | — | ${statements(r.statementsPerRequest)} | ${r.absent ? 'not available' : 'error'}: ${r.error!.replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 160)} | |`);
    }
    for (const c of connections) {
      for (const r of rows) {
        const cell = r.cells.find((x) => x.connections === c);
        if (!cell) continue;
        const errs = errorsOf(cell);
        const stmt =
          r.statementsByOperation && Object.keys(r.statementsByOperation).length
            ? `${statements(r.statementsPerRequest)} (${Object.entries(r.statementsByOperation).map(([k, v]) => `${k} ${statements(v)}`).join(', ')})`
            : statements(r.statementsPerRequest);
        if (cell.requests === 0) {
          // Every request took longer than the measured run: no latency sample at all.
          const over = `> ${fmt(cell.durationS * 1000)}`;
          lines.push(`| ${docLabel} | ${c} | ${label(r)} | 0 | ${over} | ${over} | ${stmt} | no request completed in the ${fmt(cell.durationS)} s run | ${other(cell)} |`);
          continue;
        }
        lines.push(
          `| ${docLabel} | ${c} | ${label(r)} | ${fmt(cell.rps)} | ${ms(cell.p50Ms)} | ${ms(cell.p99Ms)} | ${stmt} | ${ratioText(results, r, cell)}${errs ? ` (${errs} failed requests)` : ''} | ${other(cell)} |`,
        );
      }
    }
  }
  return lines.join('\n');
}

/** The issue's targets for GetRecentPosts, and one statement per read for every read document. */
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
            name: v.name, doc, connections: c, required: v.required, kind: 'ratio', status: 'not measured',
            detail: `${ours ? '' : 'ours'}${!ours && !theirs ? ' and ' : ''}${theirs ? '' : SYSTEMS[v.system].label} not measured`,
          });
          continue;
        }
        const value = ours.rps / theirs.rps;
        const met = value >= v.required;
        if (theirs.requests === 0) {
          targets.push({
            name: v.name, doc, connections: c, value, required: v.required, kind: 'ratio', status: 'met',
            detail: `no request of ${SYSTEMS[v.system].label} completed in ${fmt(theirs.durationS)} s; ours ${fmt(ours.rps)} req/s`,
          });
          continue;
        }
        targets.push({
          name: v.name, doc, connections: c, value, required: v.required, kind: 'ratio', status: met ? 'met' : 'missed',
          detail: met
            ? `${ratio(value)}`
            : `${ratio(value)}: short by ${fmt((1 - value / v.required) * 100)}% (ours would need ${fmt(theirs.rps * v.required)} req/s instead of ${fmt(ours.rps)})`,
        });
      }
    }
  }
  for (const doc of ['recent5', 'recent50', 'user'] as DocId[]) {
    const r = results.find((x) => x.system === 'ours' && x.doc === doc);
    const value = r?.error ? undefined : r?.statementsPerRequest;
    targets.push({
      name: 'exactly one SQL statement per read request', doc, value, required: 1, kind: 'statements',
      status: value === undefined ? 'not measured' : value === 1 ? 'met' : 'missed',
      detail: value === undefined ? 'ours not measured' : `${statements(value)} per request`,
    });
  }
  return targets;
}

export function targetsTable(targets: Target[]): string {
  const lines = ['| target | document | conns | result | |', '|---|---|---:|---|---|'];
  for (const t of targets) {
    lines.push(`| ${t.name} | ${DOC_LABELS[t.doc]} | ${t.connections ?? '—'} | ${t.detail} | ${t.status} |`);
  }
  return lines.join('\n');
}

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
    '**Targets (GetRecentPosts)**',
    '',
    targetsTable(report.targets),
    '',
    ...report.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}
