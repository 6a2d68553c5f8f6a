import { resolveTestServer } from './server';
import { ensureTemplate } from './template';

/**
 * Runs once per `jest` invocation: finds (or starts) PostgreSQL, builds the migrated template, and
 * hands both to the test environment through the environment variables below.
 */
export default async function globalSetup(): Promise<void> {
  const { adminUrl, embedded } = await resolveTestServer();
  process.env.BLOG_TEST_ADMIN_URL = adminUrl;
  process.env.BLOG_TEST_TEMPLATE = await ensureTemplate(adminUrl);
  (globalThis as { __blogEmbedded?: unknown }).__blogEmbedded = embedded;
}
