// Health probe of the images (Dockerfile HEALTHCHECK, docker-compose.yml): exit 0 when the
// service answers 2xx on its own port, 1 otherwise. Node's fetch, so the image needs no curl.
//
//   node healthcheck.cjs api [/path]      PORT (default 8000), path /health by default
//   node healthcheck.cjs worker [/path]   WORKER_HEALTH_PORT (default 8001), path /health
'use strict';

const [service, path = '/health'] = process.argv.slice(2);
const ports = { api: process.env.PORT || '8000', worker: process.env.WORKER_HEALTH_PORT || '8001' };
const port = ports[service];
if (!port) {
  process.stderr.write('usage: node healthcheck.cjs api|worker [/path]\n');
  process.exit(2);
}
const url = `http://127.0.0.1:${port}${path}`;
fetch(url, { signal: AbortSignal.timeout(2500) }).then(
  (res) => {
    if (!res.ok) process.stderr.write(`${url}: HTTP ${res.status}\n`);
    process.exit(res.ok ? 0 : 1);
  },
  (err) => {
    process.stderr.write(`${url}: ${err && err.message ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
