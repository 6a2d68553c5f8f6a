/**
 * @jest-environment-options {"database": false}
 */
import { MODEL, type Entity } from '@blog/shared';
import {
  getNamedType,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  isObjectType,
  isScalarType,
  type GraphQLOutputType,
  type GraphQLSchema,
} from 'graphql';
import { createSchema } from './schema';
import { ROOT_FIELDS } from '../reads/root-fields';

/** Hand-written Query fields with resolvers of their own (src/graphql/resolvers.ts), not the read engine's. */
const OWN_RESOLVERS = ['events'];

/**
 * The hand-written SDL (src/graphql/type-defs.ts) against the entities' declarations
 * (shared/src/model): every difference between what a type says and what the document holds, or
 * between the Query fields and the declared read fields, as one line each.
 */
function mismatches(schema: GraphQLSchema, model: readonly Entity[]): string[] {
  const out: string[] = [];
  const byName = new Map<string, Entity>(model.map((e) => [e.name, e]));
  const unwrap = (t: GraphQLOutputType) => (t instanceof GraphQLNonNull ? t.ofType : t);
  /** `type` (an object type) has exactly `fields` of `entity`'s document, each of the right kind. */
  const compare = (where: string, type: GraphQLOutputType, entity: Entity, fields: readonly string[], extra: string[] = []) => {
    const object = getNamedType(type);
    if (!isObjectType(object)) return void out.push(`${where}: ${object.name} is not an object type`);
    const have = Object.keys(object.getFields()).filter((f) => !extra.includes(f));
    for (const f of fields) if (!have.includes(f)) out.push(`${where}: ${object.name} lacks ${f}, which the ${entity.name} document holds`);
    for (const f of have) if (!fields.includes(f)) out.push(`${where}: ${object.name}.${f} is in no ${entity.name} document`);
    for (const f of fields.filter((name) => have.includes(name))) {
      const field = entity.fields[f];
      if (!field) {
        out.push(`${where}: ${entity.name} has no field ${f}`);
        continue;
      }
      const gql = object.getFields()[f]!.type;
      const at = `${where}: ${object.name}.${f}`;
      const fieldArgs = object.getFields()[f]!.args;
      const args = fieldArgs.map((a) => `${a.name}: ${String(a.type)}`).join(', ');
      const wantArgs = field.kind === 'list' ? 'limit: Int, after: String' : '';
      if (args !== wantArgs) out.push(`${at} takes (${args}); declared (${wantArgs})`);
      switch (field.kind) {
        case 'column':
          if (!isScalarType(getNamedType(gql))) out.push(`${at} must be a scalar (a column)`);
          else if (field.timestamp && getNamedType(gql).name !== 'String') out.push(`${at} must be a String (a timestamp)`);
          break;
        case 'count':
          if (String(gql) !== 'Int!') out.push(`${at} must be Int! (a count)`);
          break;
        case 'embedsOne':
          if (!(gql instanceof GraphQLNonNull) || unwrap(gql) instanceof GraphQLList)
            out.push(`${at} must be a non-null object (embeds one)`);
          compare(at, gql, byName.get(field.entity)!, field.fields);
          break;
        case 'list':
        case 'embedsMany':
          if (!/^\[\w+!\]!$/.test(String(gql))) out.push(`${at} must be [X!]! (a list)`);
          // A list read a page at a time: its items carry a cursor, and it takes the page's arguments.
          compare(at, gql, byName.get(field.entity)!, field.fields, field.kind === 'list' ? ['cursor'] : []);
          break;
      }
    }
  };
  const query = schema.getQueryType()!.getFields();
  const declared = new Set<string>(['syncMetrics', ...OWN_RESOLVERS]);
  for (const entity of model) {
    const type = schema.getType(entity.graphqlType);
    if (!(type instanceof GraphQLObjectType)) {
      out.push(`${entity.name}: no object type ${entity.graphqlType}`);
      continue;
    }
    compare(entity.name, type, entity, Object.keys(entity.fields), ['cursor']);
    const { byKey, list } = entity.read;
    if (byKey) {
      declared.add(byKey.field);
      const field = query[byKey.field];
      if (!field) out.push(`Query.${byKey.field} (${entity.name}.read.byKey) is missing`);
      else {
        if (String(field.type) !== entity.graphqlType) out.push(`Query.${byKey.field} must return ${entity.graphqlType}`);
        const args = field.args.map((a) => `${a.name}: ${String(a.type)}`);
        const want = `${byKey.arg}: ${byKey.type}!`;
        if (args.join(', ') !== want) out.push(`Query.${byKey.field} must take (${want}), not (${args.join(', ')})`);
      }
    }
    if (list) {
      declared.add(list.field);
      const field = query[list.field];
      if (!field) out.push(`Query.${list.field} (${entity.name}.read.list) is missing`);
      else {
        if (String(field.type) !== `[${entity.graphqlType}!]!`) out.push(`Query.${list.field} must return [${entity.graphqlType}!]!`);
        const want = [
          'limit: Int',
          'after: String',
          ...Object.entries(list.filters ?? {}).map(([arg, f]) => `${arg}: ${f.type}${f.required ? '!' : ''}`),
        ].sort();
        const args = field.args.map((a) => `${a.name}: ${String(a.type)}`).sort();
        if (args.join(', ') !== want.join(', ')) out.push(`Query.${list.field} takes (${args.join(', ')}); declared (${want.join(', ')})`);
      }
    }
  }
  for (const name of Object.keys(query)) if (!declared.has(name)) out.push(`Query.${name} is declared by no entity`);
  return out;
}

test('the SDL has exactly the declared documents: every entity type, embedded type and Query field', () => {
  expect(mismatches(createSchema(), MODEL)).toEqual([]);
});

test('the Query fields the read engine answers are exactly the declared ones', () => {
  const fields = Object.keys(createSchema().getQueryType()!.getFields()).filter((name) => !OWN_RESOLVERS.includes(name));
  expect(Object.keys(ROOT_FIELDS).sort()).toEqual(fields.sort());
});

test('the comparison finds a field added to a declaration, a removed one, a changed kind and a changed filter', () => {
  const [user, post, comment, ...rest] = MODEL;
  const changed: Entity[] = [
    { ...user!, fields: { ...user!.fields, karma: { kind: 'count', entity: 'post', via: 'author_id' } } },
    {
      ...post!,
      fields: Object.fromEntries(Object.entries(post!.fields).filter(([name]) => name !== 'title')),
      read: { ...post!.read, list: { ...post!.read.list!, filters: {} } },
    },
    { ...comment!, fields: { ...comment!.fields, content: { kind: 'count', entity: 'post', via: 'author_id' } } },
    ...rest,
  ];
  expect(mismatches(createSchema(), changed)).toEqual([
    'user: User lacks karma, which the user document holds',
    'post: Post.title is in no post document',
    // The comment items of a post embed the changed comment content, and comments embed the post's title.
    'post: Post.comments: PostComment.content must be Int! (a count)',
    expect.stringMatching(
      /^Query\.posts takes \(after: String, authorId: ID, limit: Int, published: Boolean[^)]*\); declared \(after: String, limit: Int\)$/,
    ),
    'comment: Comment.content must be Int! (a count)',
    'comment: Comment.post: post has no field title',
  ]);
});
