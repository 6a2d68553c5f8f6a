import type http from 'node:http';

/**
 * X-Process-Time on every response: milliseconds from the moment the request reached the server to
 * the moment its headers are written (e.g. "0.412ms", as the seed README shows it).
 */
export const PROCESS_TIME_HEADER = 'X-Process-Time';

export function formatProcessTime(startNs: bigint): string {
  return `${(Number(process.hrtime.bigint() - startNs) / 1e6).toFixed(3)}ms`;
}

/** Stamps the header when the response's headers go out, whoever writes them. */
export function stampProcessTime(res: http.ServerResponse, startNs: bigint): void {
  const writeHead = res.writeHead;
  res.writeHead = function stamped(this: http.ServerResponse, ...args: unknown[]) {
    if (!this.headersSent) this.setHeader(PROCESS_TIME_HEADER, formatProcessTime(startNs));
    return (writeHead as (...a: unknown[]) => http.ServerResponse).apply(this, args);
  } as typeof res.writeHead;
}
