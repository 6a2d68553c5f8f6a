#!/usr/bin/env node
import {
  createBoss,
  createLogger,
  EXIT,
  listDeadLetters,
  openDatabase,
  readDatabaseConfig,
  replayDeadLetters,
  runCli,
  SYNC_DEAD_LETTER_QUEUE,
  SYNC_QUEUE,
  UUID_PATTERN,
  UsageError,
} from '@blog/shared';

const USAGE = `Usage: npm run dead-letter -- <command>

Commands:
  list                   show the sync jobs that failed every retry (oldest first): dead letter id,
                         original job id, attempts, last error, entities
  replay --all           move every dead letter back onto the sync queue (${SYNC_QUEUE})
  replay <id> [<id>...]  move these dead letters (ids as \`list\` prints them) back onto the queue

Replayed jobs start over with the queue's retries; syncs are idempotent, so a replay is always safe.
Exit codes: 0 done, 1 failure (including ids that are not waiting dead letters), 2 usage.
Connects to DATABASE_URL; without it, to the embedded PostgreSQL.`;

const LIST_LIMIT = 1000;

runCli(async (argv) => {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command ? EXIT.ok : EXIT.usage;
  }
  if (command === 'list' && args.length) throw new UsageError(`list takes no arguments.\n\n${USAGE}`);
  if (command === 'replay') {
    if (!args.length) throw new UsageError(`replay needs --all or dead letter ids.\n\n${USAGE}`);
    if (args.includes('--all') && args.length > 1) throw new UsageError(`replay takes either --all or ids, not both.\n\n${USAGE}`);
    const bad = args.filter((a) => a !== '--all' && !UUID_PATTERN.test(a));
    if (bad.length) throw new UsageError(`Not a job id: ${bad.join(' ')}\n\n${USAGE}`);
  } else if (command !== 'list') {
    throw new UsageError(`Unknown command "${command}".\n\n${USAGE}`);
  }

  const logger = createLogger('blog-dead-letter', process.env.LOG_LEVEL ?? 'warn');
  const db = await openDatabase(readDatabaseConfig(), logger);
  const boss = createBoss({ url: db.url, applicationName: 'blog-dead-letter', max: 2, maintenance: false });
  boss.on('error', (err: Error) => logger.error({ err }, 'pg-boss error'));
  try {
    await boss.start();
    if (command === 'list') {
      const letters = await listDeadLetters(boss, { limit: LIST_LIMIT });
      if (!letters.length) {
        process.stdout.write(`no dead letters in ${SYNC_DEAD_LETTER_QUEUE}\n`);
        return EXIT.ok;
      }
      for (const d of letters) {
        const p = d.data?.plan ?? {};
        const entities = `users ${p.user?.length ?? 0}, posts ${p.post?.length ?? 0}, comments ${p.comment?.length ?? 0}`;
        process.stdout.write(
          `${d.id}  dead since ${d.deadSince.toISOString()}  job ${d.sourceId ?? '?'}  ` +
            `attempts ${d.attempts ?? '?'}  ${d.data?.mode ?? '?'}  ${entities}\n` +
            `    error: ${d.error ?? '(none recorded)'}\n`,
        );
      }
      process.stdout.write(
        `${letters.length}${letters.length === LIST_LIMIT ? '+' : ''} dead letter(s); replay with: npm run dead-letter -- replay --all\n`,
      );
      return EXIT.ok;
    }
    const result = await replayDeadLetters(boss, args.includes('--all') ? { all: true } : { ids: args });
    process.stdout.write(`replayed ${result.moved} dead letter(s) onto ${SYNC_QUEUE}\n`);
    if (result.notFound.length) {
      process.stderr.write(`not waiting in ${SYNC_DEAD_LETTER_QUEUE} (unknown or already replayed): ${result.notFound.join(' ')}\n`);
      return EXIT.failure;
    }
    return EXIT.ok;
  } finally {
    await boss.stop({ graceful: false, close: true });
    await db.close();
  }
});
