import { ConfigError } from '../config/env';
import { MigrationError } from '../migrations/files';

/** Exit codes of the command-line tools. */
export const EXIT = {
  ok: 0,
  /** The command ran and found or hit a problem (a failed migration, drift found by verify). */
  failure: 1,
  /** The command line or the configuration is wrong. */
  usage: 2,
} as const;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Runs a CLI's main function: prints a clear one-paragraph message (no stack trace) for the errors
 * users cause, and sets the exit code.
 */
export function runCli(main: (argv: string[]) => Promise<number | void>): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code ?? EXIT.ok;
    },
    (err: unknown) => {
      if (err instanceof UsageError || err instanceof ConfigError) {
        process.stderr.write(`${err.message}\n`);
        process.exitCode = EXIT.usage;
      } else if (err instanceof MigrationError) {
        process.stderr.write(`${err.message}\n`);
        process.exitCode = EXIT.failure;
      } else {
        const e = err as Error;
        process.stderr.write(`${e?.message ?? String(err)}\n`);
        if (process.env.DEBUG) process.stderr.write(`${e?.stack ?? ''}\n`);
        process.exitCode = EXIT.failure;
      }
    },
  );
}

/**
 * What a service sends the process that started it (`npm start`) over the IPC channel once it
 * listens: proof that the answer on that port is this process's, and its real URL (port 0).
 */
export interface ReadyMessage {
  type: 'blog-service-ready';
  service: string;
  url: string;
}

/** Sends the ReadyMessage when the process was started with an IPC channel; does nothing otherwise. */
export function reportReady(service: string, url: string): void {
  const message: ReadyMessage = { type: 'blog-service-ready', service, url };
  process.send?.(message);
}

export function isReadyMessage(message: unknown): message is ReadyMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'blog-service-ready' &&
    typeof (message as { url?: unknown }).url === 'string'
  );
}
