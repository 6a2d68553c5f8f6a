import os from 'node:os';
import type { Queryable } from '@blog/shared';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string;
  wrk: string;
}

/** What the run ran on: the figures are only comparable within one run on one machine. */
export async function describeMachine(db: Queryable, wrk: string): Promise<Machine> {
  const cpus = os.cpus();
  const { rows } = await db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: `PostgreSQL ${rows[0]?.v ?? '?'}`,
    wrk,
  };
}

export function machineLine(m: Machine): string {
  return `${m.cpus} x ${m.cpuModel}, ${m.memoryGiB} GiB RAM, ${m.os}; ${m.postgres}; Node ${m.node}; ${m.wrk}`;
}
