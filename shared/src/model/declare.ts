/**
 * The shape of an entity's declaration: plain data saying what is specific to one projection. The
 * sync engine's SQL (documents, dependency map, claim, verify), the entity types and their lock
 * order are derived from these declarations (shared/src/sync); nothing else names an entity except
 * its commands. `npm run sync -- sql <entity>` prints what is derived for one.
 *
 * Names of tables and columns here are constants of the code, never input: they are written into
 * SQL as they are.
 */

/** SQL types of the plain columns a tv_* table keeps beside `data` (for sorting, filtering, paging). */
export type ColumnType = 'uuid' | 'boolean' | 'timestamptz' | 'text' | 'int';

/** A document field read from a column of the entity's own tb_* row. */
export interface ColumnField {
  kind: 'column';
  column: string;
  /** Its GraphQL type (`String!`, `ID!`, `Boolean!`, `String` for a nullable column...). */
  type: string;
  /** A timestamptz rendered as JavaScript's toISOString() gives it, whatever the session time zone. */
  timestamp?: boolean;
}

/** The GraphQL object type of embedded objects (list items included): its name and description. */
export interface EmbeddedType {
  type: string;
  description?: string;
}

/**
 * The entity this row references through `via` (a NOT NULL foreign key of this entity's tb_* table,
 * also a plain column of its tv_* table), embedded as an object of some of that entity's fields.
 * A change of the referenced row refreshes every row embedding it.
 */
export interface EmbedsOneField extends EmbeddedType {
  kind: 'embedsOne';
  entity: string;
  via: string;
  fields: readonly string[];
}

/**
 * A link table of a many-to-many relation (primary key (from, to), no other references): `from`
 * is its column referencing the entity that declares the field, `to` the other entity's. The
 * commands that write it name both sides in their changes; deletes remove the links of the rows
 * they delete first (deleteLinks in shared/src/sync/dependencies.ts).
 */
export interface Link {
  table: string;
  from: string;
  to: string;
  /** A column of the link table giving the order of the embedded list. */
  order?: string;
}

/**
 * How many rows of `entity` reference this one: through their column `via` (optionally only those
 * where the boolean column `where` is true), or through a link table (`through`).
 *
 * `kept`: the column of this entity's counts table (EntityDeclaration.keptCounts) where the commands
 * keep it up to date by the difference they make. A kept count is not in the document: reads merge
 * it in from the counts row, in the same statement (a new comment updates one counter, not its
 * post's document). It can count any number of rows. Without `kept` the count is in the document and
 * every change of a counted row refreshes it: only for counts of bounded things (a tag's posts are
 * counted through links the commands write one post at a time).
 */
export interface CountField {
  kind: 'count';
  entity: string;
  /** Unused (empty) with `through`. */
  via: string;
  where?: string;
  kept?: string;
  through?: Link;
}

/**
 * The rows of `entity` linked to this one through a link table, each as an object of some of that
 * entity's columns: a bounded list (`max`, which a constraint of the link table enforces), kept in
 * the document. A change of a linked row refreshes every row embedding it.
 */
export interface EmbedsManyField extends EmbeddedType {
  kind: 'embedsMany';
  entity: string;
  through: Link;
  fields: readonly string[];
  max: number;
}

/**
 * The rows of `entity` referencing this one through `via`, each as an object of some of that
 * entity's fields, in (created_at, id) order: an unbounded list, so never in the document. Reads
 * answer it a page at a time (`limit`, `after`) from the other entity's projection table, in the
 * same statement as the rest (an index range scan per parent on (via, created_at, id)).
 */
export interface ListField extends EmbeddedType {
  kind: 'list';
  entity: string;
  via: string;
  fields: readonly string[];
}

export type Field = ColumnField | EmbedsOneField | CountField | ListField | EmbedsManyField;

/**
 * A filter argument of a list query field, on a plain column of the projection table. A Boolean
 * filter becomes SQL structure (`published` / `NOT published`) so that a partial index can serve it;
 * an ID filter is a parameter.
 */
export interface ListFilter {
  /** The plain column compared (unused with `contains`). */
  column: string;
  type: 'ID' | 'Boolean' | 'String';
  required?: boolean;
  /**
   * Instead of a column: rows whose document's list `field` holds an object with this value at
   * `key` (`data->'field' @> [{key: value}]`, which a GIN index on the list can serve).
   */
  contains?: { field: string; key: string };
}

/** A Query field answering one entity by the value of a unique plain column. */
export interface KeyLookup {
  field: string;
  arg: string;
  column: string;
  type: 'ID' | 'String';
}

/**
 * The Query fields answering an entity from its projection table. Lists page by keyset on
 * (created_at, id), which every projection table indexes (in `order`).
 */
export interface ReadDeclaration {
  /** `<field>(<arg>: <type>!): Type` */
  byKey?: KeyLookup;
  /** `<field>(limit: Int, after: String, <filters>): [Type!]!`, with the field's description. */
  list?: { field: string; order: 'ASC' | 'DESC'; filters?: Readonly<Record<string, ListFilter>>; description?: string };
}

export interface EntityDeclaration<N extends string = string> {
  /** The entity type, as the sync queue, sync_log and metrics name it. */
  name: N;
  /** Its GraphQL object type, and that type's description. */
  graphqlType: string;
  description?: string;
  /** The command table (primary key `id uuid`). */
  table: string;
  /**
   * The projection table: `id`, `data jsonb`, the plain columns, `synced_at`. Declared as the
   * version 1 table's name; for a later version `declare` makes it that version's table
   * (projectionTable).
   */
  view: string;
  /**
   * The version of the document's shape (default 1). Raise it when a change of the declaration
   * changes what the documents hold (a field added, removed or computed differently): a release
   * declaring a new version reads and writes a table of its own (`tv_post_v2`), which
   * `npm run migrate` creates beside the previous version's and the workers fill in the background
   * while the processes of the previous release keep serving theirs (shared/src/sync/shapes.ts).
   */
  version?: number;
  /** The version 1 table's name (set by `declare`; the other versions' tables are named after it). */
  base?: string;
  /** The alias of the command table in derived SQL (short, unique among the entities). */
  alias: string;
  /** The plain columns of the projection table, copied from the command table's columns of the same names. */
  columns: Readonly<Record<string, ColumnType>>;
  /** The document's fields, by the name they have in the document. */
  fields: Readonly<Record<string, Field>>;
  /** Its Query fields. */
  read: ReadDeclaration;
  /** The table where commands keep this entity's counts (CountField.kept), keyed by `key`. */
  keptCounts?: { table: string; key: string };
}

export const column = (name: string, type: string): ColumnField => ({ kind: 'column', column: name, type });
/** A timestamptz column, in the document as an ISO-8601 string in UTC. */
export const timestamp = (name: string): ColumnField => ({ kind: 'column', column: name, type: 'String!', timestamp: true });
export const embedsOne = (entity: string, via: string, fields: readonly string[], type: EmbeddedType): EmbedsOneField => ({
  kind: 'embedsOne',
  entity,
  via,
  fields,
  ...type,
});
export const count = (entity: string, via: string, options: { where?: string; kept?: string } = {}): CountField => ({
  kind: 'count',
  entity,
  via,
  ...options,
});
/** How many rows of `entity` are linked to this one through `link`. */
export const countThrough = (entity: string, link: Link): CountField => ({ kind: 'count', entity, via: '', through: link });
export const embedsMany = (entity: string, through: Link, fields: readonly string[], max: number, type: EmbeddedType): EmbedsManyField => ({
  kind: 'embedsMany',
  entity,
  through,
  fields,
  max,
  ...type,
});
/** `<field>(id: ID!)`. */
export const byId = (field: string): KeyLookup => ({ field, arg: 'id', column: 'id', type: 'ID' });
export const list = (entity: string, via: string, fields: readonly string[], type: EmbeddedType): ListField => ({
  kind: 'list',
  entity,
  via,
  fields,
  ...type,
});

/** Merged into the entity at read time, never stored in its document: lists and kept counts. */
export type ReadTimeField = ListField | (CountField & { kept: string });

export function isReadTime(field: Field): field is ReadTimeField {
  return field.kind === 'list' || (field.kind === 'count' && field.kept !== undefined);
}

/** The projection table of a version of an entity's documents: `tv_post`, then `tv_post_v2`, ... */
export function projectionTable(base: string, version: number): string {
  if (!Number.isInteger(version) || version < 1)
    throw new Error(`${base}: a declaration's version must be a positive integer (got ${version})`);
  return version === 1 ? base : `${base}_v${version}`;
}

/**
 * Keeps the entity's name as a literal type (EntityType is the union of them), and makes `view` the
 * table of the declared version.
 */
/** A declaration as `declare` returns it: its version and base table filled in. */
export type Declared<N extends string = string> = EntityDeclaration<N> & { version: number; base: string };

export const declare = <const N extends string>(declaration: EntityDeclaration<N>): Declared<N> => {
  const version = declaration.version ?? 1;
  const base = declaration.base ?? declaration.view;
  return { ...declaration, version, base, view: projectionTable(base, version) };
};
