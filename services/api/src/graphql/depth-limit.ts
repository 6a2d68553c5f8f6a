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
        const depth = measure(node.selectionSet, { fragments, memo: new Map(), visiting: new Set(), cap: max + 1 });
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

interface Measure {
  fragments: Map<string, FragmentDefinitionNode>;
  /** Depth of each fragment's selection (a fragment's depth does not depend on where it is spread). */
  memo: Map<string, number>;
  visiting: Set<string>;
  /** Depths are counted up to this (the limit + 1) and no further. */
  cap: number;
}

/**
 * Depth of a selection set, at most `cap`. Fragments are measured once each (memoized): without
 * that, a chain of fragments each spreading the next one twice takes 2^n steps to measure (a
 * 40-fragment document of a few hundred bytes kept the process busy for minutes).
 */
function measure(set: SelectionSetNode, m: Measure): number {
  let deepest = 0;
  for (const sel of set.selections) {
    let d = 0;
    if (sel.kind === Kind.FIELD) {
      d = 1 + (sel.selectionSet ? measure(sel.selectionSet, m) : 0);
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      d = measure(sel.selectionSet, m);
    } else {
      const name = sel.name.value;
      const known = m.memo.get(name);
      if (known !== undefined) {
        d = known;
      } else {
        const fragment = m.fragments.get(name);
        // A fragment cycle is reported by NoFragmentCyclesRule; do not follow it here.
        if (!fragment || m.visiting.has(name)) continue;
        m.visiting.add(name);
        d = measure(fragment.selectionSet, m);
        m.visiting.delete(name);
        m.memo.set(name, d);
      }
    }
    deepest = Math.max(deepest, Math.min(d, m.cap));
    if (deepest >= m.cap) break;
  }
  return deepest;
}
