import path from 'node:path';
import type { SystemId } from './documents';
import { freePort } from '@blog/shared';
import { startSystem, SYSTEMS, type Paths, type RunningSystem } from './systems';

/**
 * A set of systems running at the same time, all connected to PostgreSQL the same way (through
 * the counting proxy, or directly). Systems start in parallel; while one is measured the others
 * sit idle, so the systems can take turns cell by cell and a burst of noise from elsewhere on a
 * shared machine spreads over all of them instead of landing on one system's whole series.
 */
export class Fleet {
  private readonly systems = new Map<SystemId, Promise<RunningSystem>>();

  constructor(
    private readonly paths: Paths,
    private readonly databaseUrl: string,
    private readonly poolMax: number,
    private readonly logDir: string,
    /** Names the log files: <system>-<name>.log. */
    private readonly name: string,
  ) {}

  /** Starts these systems (in parallel) and waits until each answers /health or failed. */
  async start(ids: SystemId[], options: { bareStatements?: Partial<Record<SystemId, string>> } = {}): Promise<void> {
    for (const id of ids) {
      if (this.systems.has(id)) continue;
      const pending = freePort().then((port) =>
        startSystem(SYSTEMS[id], this.paths, {
          databaseUrl: this.databaseUrl,
          port,
          poolMax: this.poolMax,
          logFile: path.join(this.logDir, `${id}-${this.name}.log`),
          bareStatements: options.bareStatements?.[id],
        }),
      );
      pending.catch(() => undefined); // reported by get()
      this.systems.set(id, pending);
    }
    await Promise.allSettled(ids.map((id) => this.systems.get(id)));
  }

  /** The running system, or why it is not running. */
  async get(id: SystemId): Promise<RunningSystem | string> {
    const pending = this.systems.get(id);
    if (!pending) return 'not started';
    try {
      const system = await pending;
      return system.exited ? `exited (see ${system.logFile})` : system;
    } catch (err) {
      return `could not start: ${(err as Error).message}`;
    }
  }

  async stop(): Promise<void> {
    const all = [...this.systems.values()];
    this.systems.clear();
    await Promise.all(
      all.map((p) =>
        p.then(
          (s) => s.stop(),
          () => undefined,
        ),
      ),
    );
  }
}
