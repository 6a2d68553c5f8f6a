import { entityOf, ENTITY_TYPES, SYNC_ORDER } from '../model';
import { statementFor, referencedBy } from './dependencies';
import { documentsSql } from './documents';
import { createdProjection, STATEMENTS } from './statements';

/**
 * Every statement derived from an entity's declaration, as PostgreSQL runs it (`npm run sync -- sql
 * <entity>`): its documents, the dependency map's branches for a change of it, the claim and write
 * of an incremental refresh, the chunks of the online rebuild and verify, the one-transaction
 * rebuild and verify. $1 is the ids, except in the chunk statements.
 */
export function describeEntity(name: string): string {
  const entity = entityOf(name);
  const s = STATEMENTS[entity.name];
  const created = createdProjection(entity.name, 'new_row');
  const inserted = referencedBy({ type: entity.name, id: '<id>', columns: new Proxy({}, { get: (_t, column) => `<${String(column)}>` }) });
  const planned = ENTITY_TYPES.filter((t) => inserted[t].length).map((t) => `${t} ${inserted[t].join(', ')}`);
  const sections: [string, string][] = [
    ['documents of a few ids ($1, at most FEW_IDS)', documentsSql(entity, 'few')],
    ['documents of many ids ($1)', documentsSql(entity, 'ids')],
    ['documents of every row (rebuild, verify)', documentsSql(entity, 'all')],
    [`dependency map: what to refresh when ${entity.name}s change ($1)`, statementFor([entity.name]).text],
    [
      `plan of a ${entity.name} just inserted, without a query`,
      `  ${entity.name} <id>${planned.length ? `; ${planned.join('; ')}` : ''}\n` +
        `  (a delete of a ${entity.name} adds the same from its row's values)`,
    ],
    ['claim (statement 1 of a refresh)', s.claim],
    ['claim of a few ids', s.claimFew],
    ['write (statement 2 of a refresh)', s.write],
    ['write of a few ids ($2: the id whose document to answer)', s.writeFew],
    ['insert of a row created by the running transaction ($2 as above)', s.insertCreated],
    [
      `projection of a row a create's one statement inserts ($1: the id), then its answer; new_row stands for the command's INSERT INTO ${entity.table} ... RETURNING *`,
      `WITH new_row AS (SELECT * FROM ${entity.table} WHERE false),\n` +
        created.ctes.map(([name, sql]) => `${name} AS (${dedent(sql)})`).join(',\n') +
        `\n${created.answer}`,
    ],
    ['chunk of the online rebuild and verify ($1: the last id of the chunk before, null for the first; $2: ids per chunk)', s.chunk],
    ['online rebuild, each chunk in its own transaction: the claim and the write above (the write logged as full)', s.writeChunk],
    ['verify of one chunk (its bounds as the chunk statement)', s.verifyChunk],
    ['rebuild in one transaction (SyncEngine.all, after the lock)', `${s.lockTable};\n${s.rebuild}`],
    ['verify of the whole table in one statement', s.verify],
  ];
  const head = `-- ${entity.name}: ${entity.table} -> ${entity.view} (GraphQL ${entity.graphqlType}); lock order ${SYNC_ORDER.join(' < ')}`;
  return [head, ...sections.map(([title, sql]) => `\n-- ${title}\n${dedent(sql)};`)].join('\n') + '\n';
}

/** The statement without the indentation it has in the source. */
function dedent(sql: string): string {
  const lines = sql
    .replace(/^\s*\n/, '')
    .replace(/\s+$/, '')
    .split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return lines.map((l) => l.slice(indent)).join('\n');
}
