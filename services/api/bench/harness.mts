/**
 * What the benchmarks share: starting and stopping the processes under test, and sending them
 * requests, one connection at a time (`sequential`) or many (`load`: wrk, or autocannon).
 *
 * Environment: BENCH_SECONDS (10 per load phase), BENCH_TOOL=wrk|autocannon (default: wrk when installed).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const env = process.env;
export const SECONDS = Number(env.BENCH_SECONDS ?? 10);
export const TOOL = env.BENCH_TOOL ?? (spawnSync('wrk', ['--version']).error ? 'autocannon' : 'wrk');

// ---- the built programs the benchmarks start ---------------------------------------------------------

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const API_MAIN = path.join(root, 'services', 'api', 'dist', 'main.js');
export const WORKER_MAIN = path.join(root, 'services', 'worker', 'dist', 'main.js');
export const SYNC_CLI = path.join(root, 'shared', 'dist', 'cli', 'sync.js');

// ---- output ---------------------------------------------------------------------------------------

export const log = (line = '') => process.stdout.write(`${line}\n`);
/** A figure with `d` decimals, or '-' when there is none. */
export const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '-');
export const loadAvg = () => `load ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} CPUs`;

/** Whether `part` is to run, given a comma-separated list of parts to run only (unset: all). */
export function onlyParts(list: string | undefined): (part: string) => boolean {
  const only = list ? new Set(list.split(',').map((s) => s.trim())) : undefined;
  return (part) => !only || only.has(part);
}

// ---- processes ----------------------------------------------------------------------------------

export async function startProcess(name: string, args: string[], extraEnv: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} not ready within 60 s:\n${out}`));
    }, 60_000);
    const onData = (d: Buffer) => {
      // Keep only the start of the output (the ready line); the pipes are drained either way.
      if (out.length < 100_000) out += d.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready:\n${out}`)));
  });
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

// ---- load ---------------------------------------------------------------------------------------

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU time the server process spent per request (user + system), in µs: robust to a busy machine. */
  cpuUs?: number;
  /** Every request this phase sent, warm-up included (the tracing benchmark counts spans per request). */
  sent: number;
}

/** utime + stime of a process, in clock ticks (Linux /proc; 100 per second). */
export function cpuTicks(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return Number.NaN;
  }
}
export const TICK_US = 10_000;

export const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

export function post(port: number, body: string): Promise<{ status: number; text: string; processTime: number; ms: number }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/graphql',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString(),
            processTime: Number.parseFloat(String(res.headers['x-process-time'] ?? 'NaN')),
            ms: Number(process.hrtime.bigint() - started) / 1e6,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** One connection, requests one after another: latency and server time (X-Process-Time). */
export async function sequential(
  port: number,
  body: string,
  n: number,
  warmUp = Math.min(1000, n),
): Promise<LoadResult & { serverP50: number; serverP99: number; server: number[] }> {
  // A kept-alive socket idle since an earlier phase may be near the server's keep-alive timeout
  // (65 s): one request sent as the server closes it gets ECONNRESET. Start on a fresh connection.
  agent.destroy();
  for (let i = 0; i < warmUp; i += 1) await post(port, body); // warm-up (JIT, pool, prepared statements)
  const client: number[] = [];
  const server: number[] = [];
  let errors = 0;
  const started = performance.now();
  for (let i = 0; i < n; i += 1) {
    const r = await post(port, body);
    if (r.status !== 200) errors += 1;
    client.push(r.ms);
    server.push(r.processTime);
  }
  const seconds = (performance.now() - started) / 1000;
  client.sort((a, b) => a - b);
  server.sort((a, b) => a - b);
  return {
    rps: n / seconds,
    p50: pct(client, 50),
    p99: pct(client, 99),
    errors,
    serverP50: pct(server, 50),
    serverP99: pct(server, 99),
    server,
    sent: warmUp + n,
  };
}

/**
 * Runs wrk and resolves with its output. Asynchronously: this process keeps reading the servers'
 * output pipes while wrk runs. (With spawnSync it once blocked the tracing benchmark's OTLP
 * collector, then in this process: the exporters stalled and dropped spans, and tracing looked
 * cheaper than it is.)
 */
function wrk(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited with ${code}:\n${out}`))));
  });
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'blog-bench-'));

/**
 * Many connections for SECONDS: wrk (C, one thread) when installed, else autocannon. Several
 * bodies are sent in turn.
 */
export async function load(
  port: number,
  body: string | string[],
  connections: number,
  pid: number | undefined,
  { seconds = SECONDS, warmUpSeconds = 2 }: { seconds?: number; warmUpSeconds?: number } = {},
): Promise<LoadResult & { cpuTicks: number; requests: number }> {
  const bodies = typeof body === 'string' ? [body] : body;
  if (TOOL === 'wrk') {
    const script = path.join(tmp, `post-${port}.lua`);
    const head = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n';
    writeFileSync(
      script,
      bodies.length === 1
        ? `${head}wrk.body = ${JSON.stringify(bodies[0])}\n`
        : `${head}local bodies = { ${bodies.map((b) => JSON.stringify(b)).join(', ')} }\nlocal n = 0\n` +
            'request = function()\n  n = n + 1\n  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])\nend\n',
    );
    const url = `http://127.0.0.1:${port}/graphql`;
    const warmUp = warmUpSeconds > 0 ? await wrk(['-t1', `-c${connections}`, `-d${warmUpSeconds}s`, '-s', script, url]) : '0 requests in';
    const ticks = cpuTicks(pid);
    const out = await wrk(['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url]);
    const used = cpuTicks(pid) - ticks;
    const requestsIn = (output: string) => Number(/(\d+) requests in/.exec(output)?.[1] ?? Number.NaN);
    const requests = requestsIn(out);
    const ms = (label: string) => {
      const m = new RegExp(`^\\s+${label}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
      if (!m) return Number.NaN;
      const v = Number(m[1]);
      return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
    };
    const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
    const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    return {
      rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN),
      p50: ms('50'),
      p99: ms('99'),
      errors: Number(non2xx?.[1] ?? 0) + (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
      cpuUs: (used * TICK_US) / requests,
      cpuTicks: used,
      requests,
      sent: requestsIn(warmUp) + requests,
    };
  }
  const { default: autocannon } = await import('autocannon');
  const opts = {
    url: `http://127.0.0.1:${port}/graphql`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    requests: bodies.map((b) => ({ body: b })),
    connections,
  };
  const warmUp = warmUpSeconds > 0 ? await autocannon({ ...opts, duration: warmUpSeconds }) : { requests: { total: 0 } };
  const ticks = cpuTicks(pid);
  const r = await autocannon({ ...opts, duration: seconds });
  const used = cpuTicks(pid) - ticks;
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.non2xx + r.errors,
    cpuUs: (used * TICK_US) / r.requests.total,
    cpuTicks: used,
    requests: r.requests.total,
    sent: warmUp.requests.total + r.requests.total,
  };
}
