import { GraphQLError, Kind, type ASTVisitor, type FragmentDefinitionNode, type SelectionSetNode, type ValidationContext } from 'graphql';

/**
 * A validation rule refusing operations nested deeper than `max` fields (fragments expanded; a
 * leaf field counts). The data of this schema is at most 4 deep; the limit exists for
 * introspection, whose types reference each other without end (the standard introspection query
 * that IDEs send is 15 deep).
 */
export function depthLimitRule(max: number) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const def of context.getDocument().definitions) {
      if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
    }
    return {
      OperationDefinition(node) {
        const depth = measure(node.selectionSet, fragments, new Set(), max);
        if (depth > max) {
          context.reportError(
            new GraphQLError(`The operation is nested ${depth > max + 1 ? 'more than ' : ''}${max + 1} levels deep; the limit is ${max}.`, {
              nodes: [node],
              extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: max },
            }),
          );
        }
      },
    };
  };
}

/** Depth of a selection set; stops counting once past `max` (so huge documents stay cheap). */
function measure(set: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, visiting: Set<string>, max: number): number {
  if (max < 0) return 0;
  let deepest = 0;
  for (const sel of set.selections) {
    let d = 0;
    if (sel.kind === Kind.FIELD) {
      d = 1 + (sel.selectionSet ? measure(sel.selectionSet, fragments, visiting, max - 1) : 0);
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      d = measure(sel.selectionSet, fragments, visiting, max);
    } else {
      const name = sel.name.value;
      const fragment = fragments.get(name);
      // A fragment cycle is reported by NoFragmentCyclesRule; do not follow it here.
      if (!fragment || visiting.has(name)) continue;
      visiting.add(name);
      d = measure(fragment.selectionSet, fragments, visiting, max);
      visiting.delete(name);
    }
    deepest = Math.max(deepest, d);
    if (deepest > max) break;
  }
  return deepest;
}
