import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AUTHOR_SLOT, POST_SLOT, type GraphqlRequest, type WriteRequests } from './documents';

/**
 * The load generator: wrk (https://github.com/wg/wrk), one thread, N keep-alive connections, with
 * a Lua script that POSTs the GraphQL body. wrk is cheaper per request than a Node load generator,
 * which matters on a 2-core machine where the load generator, the server and PostgreSQL share the
 * CPUs. Latency percentiles are wrk's (measured from request sent to response received; wrk does
 * not correct for coordinated omission, which affects every system alike).
 */
export interface WrkResult {
  requests: number;
  durationS: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  errors: { connect: number; read: number; write: number; timeout: number; status: number; graphql: number };
}

export type Load =
  { kind: 'read'; request: GraphqlRequest } | { kind: 'write'; requests: WriteRequests; userIds: string[]; postIds: string[] };

export interface WrkOptions {
  url: string;
  connections: number;
  durationS: number;
  /** A response slower than this counts as a timeout (wrk's default, 2 s, is too short for N+1). */
  timeoutS: number;
  load: Load;
}

const RESULT_MARK = 'BENCH_RESULT';

/** A Lua long string that cannot be closed by the text. */
function luaString(text: string): string {
  let level = 1;
  while (text.includes(`]${'='.repeat(level)}]`)) level += 1;
  const eq = '='.repeat(level);
  return `[${eq}[${text}]${eq}]`;
}

function luaList(values: string[]): string {
  return `{ ${values.map((v) => JSON.stringify(v)).join(', ')} }`;
}

export function wrkScript(load: Load): string {
  const common = `
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local graphql = 0
  for _, t in ipairs(threads) do graphql = graphql + (t:get("errors") or 0) end
  local e = summary.errors
  io.write(string.format("${RESULT_MARK} %d %d %.0f %.0f %.1f %.0f %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.timeout, e.status, graphql))
end
`;
  if (load.kind === 'read') {
    // A constant body: wrk builds the request once. Answers are checked before and after the run.
    return `${common}\nwrk.body = ${luaString(JSON.stringify(load.request))}\n`;
  }
  // Writes alternate CreatePost and AddComment for random users and posts of the dataset; every
  // answer is checked for GraphQL errors (a failed write counts, in the 'graphql' errors).
  return `${common}
local users = ${luaList(load.userIds)}
local posts = ${luaList(load.postIds)}
local createPost = ${luaString(JSON.stringify(load.requests.createPost))}
local addComment = ${luaString(JSON.stringify(load.requests.addComment))}
local n = 0
errors = 0
function init(args)
  math.randomseed(12345)
end
function request()
  n = n + 1
  local body
  if n % 2 == 1 then
    body = createPost:gsub("${AUTHOR_SLOT}", users[math.random(#users)])
  else
    body = addComment:gsub("${POST_SLOT}", posts[math.random(#posts)]):gsub("${AUTHOR_SLOT}", users[math.random(#users)])
  end
  return wrk.format(nil, nil, nil, body)
end
function response(status, headers, body)
  if status ~= 200 or body:find('"errors"', 1, true) then errors = errors + 1 end
end
`;
}

export function parseWrkOutput(stdout: string): WrkResult {
  const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
  if (!line) throw new Error(`wrk printed no result line:\n${stdout.slice(-2000)}`);
  const n = line.slice(RESULT_MARK.length).trim().split(/\s+/).map(Number);
  const [requests, durationUs, p50, p99, mean, max, connect, read, write, timeout, status, graphql] = n as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const durationS = durationUs / 1e6;
  return {
    requests,
    durationS,
    rps: requests / durationS,
    p50Ms: p50 / 1000,
    p99Ms: p99 / 1000,
    meanMs: mean / 1000,
    maxMs: max / 1000,
    errors: { connect, read, write, timeout, status, graphql },
  };
}

export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'blog-bench-wrk-'));
  const script = path.join(dir, 'load.lua');
  writeFileSync(script, wrkScript(options.load));
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        'wrk',
        [
          '-t1',
          `-c${options.connections}`,
          `-d${Math.max(1, Math.round(options.durationS))}s`,
          `--timeout`,
          `${Math.max(1, Math.round(options.timeoutS))}s`,
          '-s',
          script,
          options.url,
        ],
        { maxBuffer: 16 * 1024 * 1024 },
        (err, out, errOut) => {
          if (err) reject(new Error(`wrk failed: ${err.message}\n${errOut}`, { cause: err }));
          else resolve(out);
        },
      );
    });
    return parseWrkOutput(stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** wrk's version line, or undefined when wrk is not installed. */
export async function wrkVersion(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('wrk', ['-v'], (err, stdout, stderr) => {
      // wrk -v prints "wrk <version> [epoll] Copyright ..." and its usage, and exits 1.
      const version = /^wrk\s+(\S+)/.exec(`${stdout}${stderr}`.trim())?.[1];
      if (version) resolve(`wrk ${version}`);
      else resolve(err && (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : 'wrk (unknown version)');
    });
  });
}
