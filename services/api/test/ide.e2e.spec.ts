import { existsSync } from 'node:fs';
import { seed } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { chromium, type Browser } from 'playwright-core';
import { startApi, type TestApi } from './support';

/**
 * The GraphQL IDE loads in headless Chromium with no network but our server: every request the
 * page makes to any other origin is refused and recorded, and there must be none. Then it runs the
 * default query and shows the seed data.
 *
 * Needs Debian's Chromium at /usr/bin/chromium (`apt-get install -y chromium`); skipped without it.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  // eslint-disable-next-line no-console
  console.warn(`ide.e2e: skipped, no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
}
const maybe = haveChromium ? test : test.skip;

let pool: pg.Pool;
let api: TestApi;
let browser: Browser | undefined;

beforeAll(async () => {
  pool = testPool();
  await seed(pool);
  api = await startApi();
});

afterAll(async () => {
  await browser?.close();
  await api?.close();
  await pool?.end();
});

maybe('GraphiQL loads offline from our server and runs a query', async () => {
  // Playwright gives the browser a fresh, empty profile of its own.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const page = await browser.newPage();
  const origin = new URL(api.url).origin;
  const foreign: string[] = [];
  const failed: string[] = [];
  const pageErrors: string[] = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    foreign.push(url);
    return route.abort();
  });
  page.on('requestfailed', (r) => failed.push(r.url()));
  page.on('pageerror', (e) => pageErrors.push(e.message));

  const res = await page.goto(`${api.url}/graphql`, { waitUntil: 'load' });
  expect(res?.status()).toBe(200);
  await page.locator('.graphiql-container').waitFor({ timeout: 30_000 });
  await page.locator('.graphiql-execute-button').click();
  // The newest seed post, at the top of the response pane (which renders only the lines in view).
  await page.locator('.graphiql-response').getByText('Explicit Sync vs Triggers').waitFor({ timeout: 30_000 });
  // GraphiQL's introspection query (deeper than any data query) passed the depth limit: the docs
  // explorer knows the schema's types.
  await page.locator('[aria-label="Show Documentation Explorer"]').click();
  await page.getByText('Query', { exact: true }).first().waitFor({ timeout: 10_000 });

  expect(foreign).toEqual([]);
  expect(failed).toEqual([]);
  expect(pageErrors).toEqual([]);
});
