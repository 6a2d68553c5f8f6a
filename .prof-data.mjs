import s from './shared/dist/index.js'; import d from './shared/dist/bench/dataset.js'; const { createPool, SyncEngine } = s; const { generateDataset } = d;
const pool = createPool('postgres://postgres@127.0.0.1:5432/prof', { applicationName: 'x', max: 2 });
await generateDataset(pool, { users: 1000, posts: 10000, comments: 100000, postBytes: 1000 });
await new SyncEngine(pool).all();
await pool.query('VACUUM ANALYZE');
await pool.end();
