import net from 'node:net';
import { ConfigError } from '../config/env';

/** A TCP port free right now on 127.0.0.1 (for tests, benchmarks and the processes they start). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The one-line message for a port another process holds, naming the variable that sets it. */
export function portInUseMessage(port: number, variable: string): string {
  return (
    `Port ${port} (${variable}) is already in use by another process (another \`npm start\` or worker?): ` +
    `set ${variable}=0 to pick a free port, or ${variable} to another free port, or stop that process.`
  );
}

/**
 * Throws a ConfigError (portInUseMessage) when another process listens on `port`, on any address:
 * the services listen on every interface, so the check binds there too. Port 0 is always free.
 */
export function assertPortFree(port: number, variable: string): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new ConfigError(portInUseMessage(port, variable), { cause: err }) : err);
    });
    server.listen(port, () => server.close(() => resolve()));
  });
}
