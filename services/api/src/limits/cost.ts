import {
  getArgumentValues,
  getNamedType,
  getNullableType,
  GraphQLError,
  isCompositeType,
  isIntrospectionType,
  isListType,
  isObjectType,
  Kind,
  typeFromAST,
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { LIMITS } from '../validate';
import { ruleExtensions } from './rule-code';

/**
 * The static cost limit (MAX_QUERY_COST): a validation rule computing, before anything runs, how
 * many values an operation can make the server produce, and refusing it above the limit with code
 * QUERY_TOO_COMPLEX (HTTP 400), the cost and the limit in the message and in `extensions`.
 *
 * The cost model (services/api/README.md, "Abuse limits"):
 *  - every field costs 1 (`__typename` included), once per value of its parent, except text fields
 *    that can hold more than TEXT_COST_CHARS characters: they cost 1 per started TEXT_COST_CHARS
 *    characters of their maximum length (a post's content, up to 100,000 characters, costs 100), so
 *    that the cost bounds the size of the answer and not only its number of values;
 *  - a list field multiplies the cost of its selection by how many items it can return: its
 *    `limit` argument when written in the document (capped at MAX_PAGE_SIZE, whose own check
 *    answers a larger one with BAD_USER_INPUT), MAX_PAGE_SIZE when `limit` is a variable (its value
 *    is only known per request, and the limit is checked once per document), DEFAULT_PAGE_SIZE
 *    when it is omitted; a list without a `limit` argument (a post's tags, a delete's ids)
 *    counts DEFAULT_PAGE_SIZE items;
 *  - fragments count wherever they are spread (a field selected twice counts twice: the estimate
 *    errs on the high side, never the low one);
 *  - introspection (`__schema`, `__type`) is counted exactly: the selection is evaluated against
 *    this schema's real types, fields and arguments, stopping as soon as the limit is passed (the
 *    standard introspection query that GraphiQL sends costs 1,980 here).
 * Wide queries (thousands of aliases) are caught by the same count: every alias is a field.
 */
/**
 * The most tokens a document may have; parsing stops past it (400 GRAPHQL_PARSE_FAILED). Both
 * paths parse with it. Without it, a 1 MB body of 60,000 aliases costs over a second of CPU to
 * parse and validate before the cost rule can refuse it; with it, a few milliseconds. The largest
 * real document here, GraphiQL's introspection query, has a few hundred tokens.
 */
export const MAX_QUERY_TOKENS = 20_000;

export interface CostLimits {
  maxQueryCost: number;
  defaultPageSize: number;
  maxPageSize: number;
}

/** A text field costs 1 per started TEXT_COST_CHARS characters it can hold (at least 1). */
export const TEXT_COST_CHARS = 1000;

/**
 * The most characters each long text field of the schema can hold (the CHECK constraints, mirrored
 * by validate.ts LIMITS), by `Type.field`. Fields not listed hold at most TEXT_COST_CHARS characters.
 */
const TEXT_FIELD_CHARS: Readonly<Record<string, number>> = {
  'Post.content': LIMITS.postContent,
  'Comment.content': LIMITS.commentContent,
  'PostComment.content': LIMITS.commentContent,
  'User.bio': LIMITS.bio,
  // A command's arguments: a createPost's hold its content.
  'Event.args': LIMITS.postContent,
};

/** What a leaf field of `type` costs per value of its parent. */
export function leafCost(type: string, field: string): number {
  const chars = TEXT_FIELD_CHARS[`${type}.${field}`];
  return chars === undefined ? 1 : Math.max(1, Math.ceil(chars / TEXT_COST_CHARS));
}

/**
 * The cost of an operation. Without `variables` (validation, once per document) a `limit` given as
 * a variable counts as MAX_PAGE_SIZE; with them (a request), as the variable's value.
 */
export function operationCost(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  limits: CostLimits,
  variables?: Readonly<Record<string, unknown>>,
): number {
  const root = schema.getRootType(operation.operation);
  if (!root) return 0;
  return new CostCounter(schema, fragments, limits, variables).selectionCost(operation.selectionSet, root);
}

export function costLimitRule(limits: CostLimits): ValidationRule {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(node) {
      const fragments = new Map<string, FragmentDefinitionNode>();
      for (const def of context.getDocument().definitions) {
        if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
      }
      const cost = operationCost(context.getSchema(), node, fragments, limits);
      if (cost > limits.maxQueryCost) {
        const shown = Number.isFinite(cost) && cost < Number.MAX_SAFE_INTEGER ? String(cost) : `more than ${limits.maxQueryCost}`;
        context.reportError(
          new GraphQLError(
            `The operation${node.name ? ` ${node.name.value}` : ''} costs ${shown}; the cost limit is ${limits.maxQueryCost} ` +
              '(every field counts 1 and a long text field 1 per 1,000 characters it can hold, ' +
              'times the items of the lists it is in: ask for fewer fields or smaller pages).',
            {
              nodes: [node],
              extensions: ruleExtensions('QUERY_TOO_COMPLEX', { cost: Number.isFinite(cost) ? cost : null, limit: limits.maxQueryCost }),
            },
          ),
        );
      }
    },
  });
}

/** The cost of selections; fragment costs are memoized (a chain of spreads stays linear to count). */
class CostCounter {
  private readonly memo = new Map<string, number>();
  private readonly visiting = new Set<string>();

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly fragments: ReadonlyMap<string, FragmentDefinitionNode>,
    private readonly limits: CostLimits,
    private readonly variables?: Readonly<Record<string, unknown>>,
  ) {}

  selectionCost(set: SelectionSetNode, parent: GraphQLCompositeType): number {
    let total = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        total += this.fieldCost(sel, parent);
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        const on = sel.typeCondition ? typeFromAST(this.schema, sel.typeCondition) : parent;
        total += this.selectionCost(sel.selectionSet, isCompositeType(on) ? on : parent);
      } else {
        total += this.fragmentCost(sel.name.value);
      }
    }
    return total;
  }

  private fragmentCost(name: string): number {
    const known = this.memo.get(name);
    if (known !== undefined) return known;
    const fragment = this.fragments.get(name);
    // Unknown fragments and cycles are reported by GraphQL's own rules.
    if (!fragment || this.visiting.has(name)) return 0;
    const on = typeFromAST(this.schema, fragment.typeCondition);
    if (!isCompositeType(on)) return 0;
    this.visiting.add(name);
    const cost = this.selectionCost(fragment.selectionSet, on);
    this.visiting.delete(name);
    this.memo.set(name, cost);
    return cost;
  }

  private fieldCost(node: FieldNode, parent: GraphQLCompositeType): number {
    const name = node.name.value;
    if (name === '__typename') return 1;
    if (name === '__schema' || name === '__type') {
      return 1 + introspectionCost(this.schema, node, this.fragments, this.limits.maxQueryCost);
    }
    if (!('getFields' in parent)) return 1;
    const def = parent.getFields()[name] as GraphQLField<unknown, unknown> | undefined;
    if (!def) return 1; // an unknown field: FieldsOnCorrectTypeRule reports it
    const named = getNamedType(def.type);
    if (!node.selectionSet || !isCompositeType(named)) return leafCost(parent.name, name);
    const inner = this.selectionCost(node.selectionSet, named);
    return 1 + this.items(def, node) * inner;
  }

  /** How many items a list field may return (1 for a field that is not a list). */
  private items(def: GraphQLField<unknown, unknown>, node: FieldNode): number {
    if (!isListType(getNullableType(def.type))) return 1;
    const { defaultPageSize, maxPageSize } = this.limits;
    if (!def.args.some((a) => a.name === 'limit')) return defaultPageSize;
    const arg = node.arguments?.find((a) => a.name.value === 'limit');
    if (!arg) return defaultPageSize;
    if (arg.value.kind === Kind.INT) return Math.min(Math.max(Number.parseInt(arg.value.value, 10), 1), maxPageSize);
    if (arg.value.kind === Kind.VARIABLE && this.variables) {
      const value = this.variables[arg.value.name.value];
      // Absent or null: the field's default page; an invalid value is refused by the argument check.
      if (value === undefined || value === null) return defaultPageSize;
      if (typeof value === 'number' && Number.isInteger(value)) return Math.min(Math.max(value, 1), maxPageSize);
    }
    return maxPageSize; // a variable (or an invalid literal, which validation reports)
  }
}

/**
 * Introspection counted exactly: graphql-js's own introspection resolvers (they need only the
 * schema) evaluate the selection over the real schema, counting every value produced, and stop
 * as soon as `budget` is passed (the answer is then "more than the limit": an unbounded nesting of
 * `fields { type { fields ... } } }` is refused after at most `budget` steps).
 */
function introspectionCost(
  schema: GraphQLSchema,
  node: FieldNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  budget: number,
): number {
  const counter = { n: 0, budget };
  const queryType = schema.getQueryType();
  if (!queryType || !node.selectionSet) return 0;
  try {
    if (node.name.value === '__schema') {
      countObject(schema, node.selectionSet, schema.getType('__Schema') as GraphQLObjectType, schema, fragments, counter);
      return counter.n;
    }
    // __type(name): the named type when the name is written, else the most expensive type.
    const arg = node.arguments?.find((a) => a.name.value === 'name');
    const candidates = arg?.value.kind === Kind.STRING ? [schema.getType(arg.value.value)] : Object.values(schema.getTypeMap());
    let most = 0;
    for (const type of candidates) {
      if (!type) continue;
      const one = { n: 0, budget };
      countObject(type, node.selectionSet, schema.getType('__Type') as GraphQLObjectType, schema, fragments, one);
      most = Math.max(most, one.n);
    }
    return most;
  } catch (err) {
    if (err instanceof OverBudget) return Number.POSITIVE_INFINITY;
    throw err;
  }
}

class OverBudget extends Error {}

function countObject(
  value: unknown,
  set: SelectionSetNode,
  type: GraphQLObjectType,
  schema: GraphQLSchema,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  counter: { n: number; budget: number },
  spreading: Set<string> = new Set(),
): void {
  for (const sel of set.selections) {
    if (sel.kind === Kind.INLINE_FRAGMENT) {
      countObject(value, sel.selectionSet, type, schema, fragments, counter, spreading);
      continue;
    }
    if (sel.kind === Kind.FRAGMENT_SPREAD) {
      const fragment = fragments.get(sel.name.value);
      if (!fragment || spreading.has(sel.name.value)) continue;
      spreading.add(sel.name.value);
      countObject(value, fragment.selectionSet, type, schema, fragments, counter, spreading);
      spreading.delete(sel.name.value);
      continue;
    }
    counter.n += 1;
    if (counter.n > counter.budget) throw new OverBudget();
    const def = type.getFields()[sel.name.value];
    if (!def || !sel.selectionSet) continue;
    const named = getNamedType(def.type);
    if (!isObjectType(named) || !isIntrospectionType(named)) continue;
    let result: unknown;
    try {
      const args = getArgumentValues(def, sel, {});
      result = def.resolve
        ? def.resolve(value, args, undefined, { schema } as GraphQLResolveInfo)
        : (value as Record<string, unknown>)[def.name];
    } catch {
      continue; // an argument given as a variable: counted as the field alone
    }
    const items = Array.isArray(result) ? result : result === null || result === undefined ? [] : [result];
    for (const item of items) {
      countObject(item, sel.selectionSet, named, schema, fragments, counter, spreading);
    }
  }
}
