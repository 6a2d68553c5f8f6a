/** node-postgres's value serializer (what it applies to every bound value), not in @types/pg. */
declare module 'pg/lib/utils' {
  export function prepareValue(value: unknown): unknown;
}
