import type { EmbeddedPostgres } from '../src/db/embedded';

export default async function globalTeardown(): Promise<void> {
  const embedded = (globalThis as { __blogEmbedded?: EmbeddedPostgres }).__blogEmbedded;
  if (embedded) await embedded.stop();
}
