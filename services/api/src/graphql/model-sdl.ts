import { entityOf, type Entity, type Field } from '@blog/shared';

/**
 * The GraphQL types of the entities and their Query fields, derived from the declarations
 * (shared/src/model): a type's fields are its document's keys, so a read is a projection of
 * `tv_*.data` (reads/sql-builder.ts), plus what reads merge in (kept counts, and lists paged with
 * `limit` and `after`, whose items carry a cursor). Embedded objects and list items have their own
 * types (Author, PostComment, ...) holding exactly what is embedded, so that every field can be
 * answered from the one row that holds it. The rest of the schema is written by hand (type-defs.ts).
 */
export function modelTypeDefs(model: readonly Entity[]): string {
  const types = new Map<string, string>();
  const embeddedTypes = new Map<string, { fields: string; description?: string }>();
  const query: string[] = [];

  /** The GraphQL type of one document field; embedded types are added as they are met. */
  const typeOf = (owner: Entity, name: string, field: Field): string => {
    switch (field.kind) {
      case 'column':
        return field.type;
      case 'count':
        return 'Int!';
      case 'embedsOne':
      case 'embedsMany':
      case 'list': {
        const target = entityOf(field.entity);
        const items = field.fields.map((f) => `    ${f}: ${typeOf(target, f, target.fields[f]!)}`);
        if (field.kind === 'list')
          items.push(
            `    ${describe(`Opaque position of this item in the list; pass it as \`after\` for the next page.`)}`,
            '    cursor: String!',
          );
        const body = items.join('\n');
        const seen = embeddedTypes.get(field.type);
        if (seen && seen.fields !== body)
          throw new Error(`model ${owner.name}.${name}: type ${field.type} is declared elsewhere with other fields`);
        if (!seen || (!seen.description && field.description)) {
          embeddedTypes.set(field.type, { fields: body, ...(field.description ? { description: field.description } : {}) });
        }
        return field.kind === 'embedsOne' ? `${field.type}!` : `[${field.type}!]!`;
      }
    }
  };
  /** A field's arguments: a list's page. */
  const argsOf = (field: Field): string => (field.kind === 'list' ? '(limit: Int, after: String)' : '');

  for (const entity of model) {
    const fields = Object.entries(entity.fields).map(([name, field]) => `    ${name}${argsOf(field)}: ${typeOf(entity, name, field)}`);
    const { byKey, list } = entity.read;
    if (list) {
      fields.push(
        `    ${describe(`Opaque position of this ${entity.name} in the ${list.field} list; pass it as \`after\` for the next page.`)}`,
      );
      fields.push('    cursor: String!');
      const filters = Object.entries(list.filters ?? {}).map(([arg, f]) => `, ${arg}: ${f.type}${f.required ? '!' : ''}`);
      if (list.description) query.push(`    ${describe(list.description)}`);
      query.push(`    ${list.field}(limit: Int, after: String${filters.join('')}): [${entity.graphqlType}!]!`);
    }
    if (byKey) query.push(`    ${byKey.field}(${byKey.arg}: ${byKey.type}!): ${entity.graphqlType}`);
    types.set(
      entity.graphqlType,
      `${entity.description ? `  ${describe(entity.description)}\n` : ''}  type ${entity.graphqlType} {\n${fields.join('\n')}\n  }`,
    );
  }
  const embedded = [...embeddedTypes].map(
    ([name, t]) => `${t.description ? `  ${describe(t.description)}\n` : ''}  type ${name} {\n${t.fields}\n  }`,
  );
  return `${[...embedded, ...types.values()].join('\n\n')}\n\n  type Query {\n${query.join('\n')}\n  }\n`;
}

/** A GraphQL description (a string literal). */
const describe = (text: string): string => JSON.stringify(text);
