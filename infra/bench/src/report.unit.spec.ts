/**
 * @jest-environment-options {"database": false}
 */
import { cacheRatiosTable, evaluateTargets, pairedShares, resultsTable, type Cell, type SystemDocResult } from './report';

const cell = (connections: number, rps: number): Cell => ({
  connections,
  rps,
  requests: rps * 10,
  durationS: 10,
  p50Ms: 1,
  p99Ms: 2,
  meanMs: 1,
  maxMs: 3,
  errors: { connect: 0, read: 0, write: 0, timeout: 0, status: 0, graphql: 0 },
});

describe('report: the response cache against the constant limit', () => {
  const results: SystemDocResult[] = [
    {
      system: 'ours-cached',
      doc: 'recent5',
      cells: [cell(16, 6000)],
      rounds: [
        { connections: 16, round: 0, rps: 4000 },
        { connections: 16, round: 1, rps: 6000 },
        { connections: 16, round: 2, rps: 5500 },
      ],
    },
    {
      system: 'constant',
      doc: 'recent5',
      cells: [cell(16, 12_000)],
      rounds: [
        { connections: 16, round: 0, rps: 10_000 },
        { connections: 16, round: 1, rps: 12_000 },
        { connections: 16, round: 2, rps: 10_000 },
      ],
    },
    { system: 'ours', doc: 'recent5', cells: [cell(16, 1000)] },
    { system: 'postgraphile', doc: 'recent5', cells: [cell(16, 500)] },
    { system: 'ours-cached', doc: 'user', cells: [cell(16, 4000)] },
    { system: 'constant', doc: 'user', cells: [cell(16, 10_000)] },
  ];

  test('shares are paired round by round; the target takes their median with several rounds, the best cells with one', () => {
    expect(pairedShares(results, 'recent5', 16)).toEqual([0.4, 0.5, 0.55]);
    const targets = evaluateTargets(results, [16]).filter((t) => t.name.startsWith('ours, response cache'));
    expect(targets.map((t) => [t.doc, t.status, t.value])).toEqual([
      ['recent5', 'met', 0.5],
      ['user', 'missed', 0.4],
    ]);
    expect(targets[0]!.detail).toContain('the median of 3 rounds (40%, 50%, 55%)');
  });

  test('the ratios table divides the cached req/s by the other rows', () => {
    const table = cacheRatiosTable(results, [16]);
    expect(table).toContain('| GetRecentPosts (limit 5) | 16 | 6,000 | 6.00x | — | 12x | — | 50% (rounds: 40%, 50%, 55%) |');
  });
});

describe('report: the results table', () => {
  test('shows the CPU per request of the server and of its PostgreSQL backends, when measured', () => {
    const results: SystemDocResult[] = [
      { system: 'ours', doc: 'writes-queued', cells: [{ ...cell(16, 1800), cpuPerRequest: { server: 317.4, database: 523.2 } }] },
      { system: 'postgraphile', doc: 'writes', cells: [cell(16, 1900)] },
    ];
    const rows = resultsTable(results, [16]).split('\n');
    expect(rows[0]).toContain('| CPU µs / request (server + PostgreSQL) | other work |');
    expect(rows.find((r) => r.includes('QUEUED'))).toMatch(/\| 317 \+ 523 \| — \|$/);
    expect(rows.find((r) => r.includes('PostGraphile'))).toMatch(/\| — \| — \|$/);
  });
});
