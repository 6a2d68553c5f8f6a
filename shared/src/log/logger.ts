import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * One JSON logger per process. Services name themselves (`blog-api`, `blog-worker`); library code
 * receives a logger (or a child of this one) instead of printing.
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    base: { service: name, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

/** A logger that drops everything: for tests and library calls that were given none. */
export const silentLogger: Logger = pino({ level: 'silent' });
