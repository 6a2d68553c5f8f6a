// The Jest environment of every test file: a database of its own, cloned from the migrated
// template, exposed to the file as process.env.DATABASE_URL and dropped when the file ends.
// The file fails if it leaves a database pool (or any other connection to its database) open.
//
// Opt out, for files that need no database: a docblock `@jest-environment-options {"database": false}`.
const { TestEnvironment } = require('jest-environment-node');
const pg = require('pg');
const { randomBytes } = require('node:crypto');

const OPEN_POOLS_KEY = Symbol.for('blog.openPools');
// A pool's end() resolves when its sockets close; the server notices a moment later.
const CONNECTION_GRACE_MS = 2000;

class BlogTestEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    const options = config.projectConfig.testEnvironmentOptions ?? {};
    this.wantsDatabase = options.database !== false;
    this.testPath = context.testPath;
  }

  async setup() {
    await super.setup();
    if (!this.wantsDatabase) return;
    const adminUrl = process.env.BLOG_TEST_ADMIN_URL;
    const template = process.env.BLOG_TEST_TEMPLATE;
    if (!adminUrl || !template) throw new Error('The test harness global setup did not run (BLOG_TEST_ADMIN_URL unset).');
    this.dbName = `blog_test_${process.pid}_${randomBytes(4).toString('hex')}`;
    await withAdmin(adminUrl, (c) =>
      c.query(`CREATE DATABASE ${c.escapeIdentifier(this.dbName)} TEMPLATE ${c.escapeIdentifier(template)}`),
    );
    const url = new URL(adminUrl);
    url.pathname = `/${this.dbName}`;
    this.global.process.env.DATABASE_URL = url.toString();
    this.global.process.env.BLOG_TEST_DATABASE = this.dbName;
  }

  async teardown() {
    const problems = [];
    const pools = this.global[OPEN_POOLS_KEY];
    if (pools && pools.size) {
      for (const record of pools) {
        problems.push(`pool "${record.name}" was never ended; ${record.stack.split('\n').slice(1, 4).join(' | ')}`);
      }
      await Promise.all([...pools].map((r) => r.pool.end().catch(() => undefined)));
    }
    if (this.dbName) {
      const adminUrl = process.env.BLOG_TEST_ADMIN_URL;
      const leftovers = await waitForNoConnections(adminUrl, this.dbName);
      if (leftovers.length && !problems.length) {
        problems.push(`connections still open to the test database: ${leftovers.join(', ')}`);
      }
      await withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(this.dbName)} WITH (FORCE)`));
    }
    await super.teardown();
    if (problems.length) {
      throw new Error(`${this.testPath} left resources open:\n  - ${problems.join('\n  - ')}`);
    }
  }
}

async function withAdmin(url, fn) {
  const client = new pg.Client({ connectionString: url, application_name: 'blog-test-env' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function waitForNoConnections(adminUrl, dbName) {
  const deadline = Date.now() + CONNECTION_GRACE_MS;
  for (;;) {
    const { rows } = await withAdmin(adminUrl, (c) =>
      c.query(
        "SELECT coalesce(nullif(application_name, ''), 'pid ' || pid) AS who FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [dbName],
      ),
    );
    if (!rows.length || Date.now() > deadline) return rows.map((r) => r.who);
    await new Promise((r) => setTimeout(r, 50));
  }
}

module.exports = BlogTestEnvironment;
