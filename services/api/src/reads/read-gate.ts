import { ReadRefusedError } from '../errors';

/**
 * Admission of reads to the database, so that heavy reads cannot take the pool:
 *  - reads hold at most `connections` connections at once: on the primary, the pool's size minus
 *    the connections kept for writes (DB_WRITE_CONNECTIONS), so a mutation never waits behind reads;
 *  - heavy reads (read-engine.ts decides which) run at most `heavy` at a time in the process, and
 *    at most one per client at a time; a client may have `heavyPerClient` of them running or
 *    waiting, more is RATE_LIMITED (HTTP 429). Other reads never wait for a heavy one: they only
 *    need a connection, and heavy reads can hold at most `heavy` of them;
 *  - a read waits for its turn at most `waitMs`, then gets SERVICE_UNAVAILABLE (HTTP 503,
 *    Retry-After).
 * Waiting reads are served first come, first served (heavy ones skip a client that already has one
 * running, so one client cannot hold every heavy turn).
 */
export interface ReadGateOptions {
  connections: number;
  heavy: number;
  heavyPerClient: number;
  waitMs: number;
}

interface Waiter {
  client: string;
  admit(): void;
}

/** The most heavy reads waiting in the process; more are refused at once. */
const MAX_HEAVY_WAITING = 256;

export class ReadGate {
  private connectionsInUse = 0;
  private readonly connectionWaiters: Waiter[] = [];
  private heavyRunning = 0;
  private readonly heavyWaiters: Waiter[] = [];
  /** Heavy reads running or waiting, per client. */
  private readonly heavyByClient = new Map<string, { running: number; pending: number }>();

  constructor(private readonly options: ReadGateOptions) {}

  /** Heavy reads started and reads refused since the start (tests). */
  readonly counts = { heavy: 0, refused: 0 };

  /** Heavy reads running now. */
  get heavyInFlight(): number {
    return this.heavyRunning;
  }

  /**
   * Waits for the read's turn and returns the function that ends it (call it exactly once, when
   * the read's connection is back in the pool). Throws ReadRefusedError when the read may not run.
   */
  async enter(client: string, heavy: boolean): Promise<() => void> {
    const deadline = Date.now() + this.options.waitMs;
    let leaveHeavy: (() => void) | undefined;
    if (heavy) leaveHeavy = await this.enterHeavy(client, deadline);
    try {
      await this.take(deadline);
    } catch (err) {
      leaveHeavy?.();
      throw err;
    }
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.connectionsInUse -= 1;
      this.connectionWaiters.shift()?.admit();
      leaveHeavy?.();
    };
  }

  private take(deadline: number): Promise<void> {
    if (this.connectionsInUse < this.options.connections) {
      this.connectionsInUse += 1;
      return Promise.resolve();
    }
    return this.wait(this.connectionWaiters, '', deadline, () => {
      this.connectionsInUse += 1;
    });
  }

  private async enterHeavy(client: string, deadline: number): Promise<() => void> {
    let mine = this.heavyByClient.get(client);
    if (mine && mine.running + mine.pending >= this.options.heavyPerClient) {
      this.counts.refused += 1;
      throw new ReadRefusedError(
        'RATE_LIMITED',
        `Too many expensive reads from this client at once (at most ${this.options.heavyPerClient}); retry when one has answered.`,
        1,
      );
    }
    if (!mine) {
      mine = { running: 0, pending: 0 };
      this.heavyByClient.set(client, mine);
    }
    const counts = mine;
    const start = () => {
      this.heavyRunning += 1;
      this.counts.heavy += 1;
      counts.running += 1;
    };
    if (this.heavyRunning < this.options.heavy && counts.running === 0) {
      start();
    } else {
      if (this.heavyWaiters.length >= MAX_HEAVY_WAITING) {
        this.counts.refused += 1;
        throw busy(this.options.waitMs);
      }
      counts.pending += 1;
      try {
        await this.wait(this.heavyWaiters, client, deadline, start);
      } finally {
        counts.pending -= 1;
        this.forgetIdle(client);
      }
    }
    return () => {
      this.heavyRunning -= 1;
      counts.running -= 1;
      this.forgetIdle(client);
      this.admitHeavy();
    };
  }

  /** Starts the first waiting heavy read whose client has none running. */
  private admitHeavy(): void {
    if (this.heavyRunning >= this.options.heavy) return;
    const i = this.heavyWaiters.findIndex((w) => !this.heavyByClient.get(w.client)?.running);
    if (i >= 0) this.heavyWaiters.splice(i, 1)[0]!.admit();
  }

  private forgetIdle(client: string): void {
    const c = this.heavyByClient.get(client);
    if (c && c.running === 0 && c.pending === 0) this.heavyByClient.delete(client);
  }

  /** Queues a waiter; `onAdmit` runs when it is admitted, before its promise settles. */
  private wait(queue: Waiter[], client: string, deadline: number, onAdmit: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        client,
        admit: () => {
          clearTimeout(timer);
          onAdmit();
          resolve();
        },
      };
      const timer = setTimeout(
        () => {
          const i = queue.indexOf(waiter);
          if (i >= 0) queue.splice(i, 1);
          this.counts.refused += 1;
          reject(busy(this.options.waitMs));
        },
        Math.max(0, deadline - Date.now()),
      );
      queue.push(waiter);
    });
  }
}

function busy(waitMs: number): ReadRefusedError {
  return new ReadRefusedError(
    'SERVICE_UNAVAILABLE',
    `The server is busy with other reads (no turn within ${waitMs} ms); retry shortly.`,
    1,
  );
}
