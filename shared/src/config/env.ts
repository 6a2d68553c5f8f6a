import path from 'node:path';
import { z } from 'zod';

/** Thrown when configuration is invalid; the message lists every bad variable and why. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses an environment object with a zod schema, once, at start-up. Every problem is reported
 * together, each naming the variable, so that an operator fixes them in one go.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: Record<string, string | undefined> = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const key = issue.path.join('.') || '(environment)';
    const got = issue.path.length === 1 ? env[String(issue.path[0])] : undefined;
    return `  ${key}: ${issue.message}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}`;
  });
  return failConfig(`Invalid configuration:\n${lines.join('\n')}`);
}

function failConfig(message: string): never {
  throw new ConfigError(message);
}

/** Empty strings in the environment mean "unset" (a common result of `FOO=` in .env files). */
/** An empty variable is an unset one (so that its default applies). */
export const unsetIfEmpty = (v: unknown) => (v === '' ? undefined : v);

/** An integer variable within [min, max], with a default. */
export const intVar = (def: number, min: number, max: number) =>
  z.preprocess(
    unsetIfEmpty,
    z.coerce
      .number({ error: 'must be a number' })
      .int({ error: 'must be an integer' })
      .min(min, { error: `must be at least ${min}` })
      .max(max, { error: `must be at most ${max}` })
      .default(def),
  );

/** A boolean variable: true/false/1/0/yes/no. */
export const boolVar = (def: boolean) =>
  z.preprocess(
    unsetIfEmpty,
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], { error: 'must be true or false' })
      .default(def ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1' || v === 'yes' || v === 'on'),
  );

/** An optional string variable (unset or empty means undefined). */
export const optionalString = () => z.preprocess(unsetIfEmpty, z.string().optional());

/** A PostgreSQL connection URL, when given. */
export const optionalPgUrl = () =>
  z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .refine((v) => /^postgres(ql)?:\/\//.test(v), { error: 'must be a postgres:// or postgresql:// URL' })
      .optional(),
  );

/** A choice among fixed values, case-insensitive, with a default. */
export const enumVar = <const T extends readonly [string, ...string[]]>(values: T, def: T[number]) =>
  z.preprocess(
    (v) => (typeof v === 'string' && v !== '' ? v.toUpperCase() : undefined),
    z
      .enum(values.map((x) => x.toUpperCase()) as unknown as T, {
        error: `must be one of ${values.join(', ')}`,
      })
      .default(def.toUpperCase() as T[number]),
  );

/**
 * A file path as the user meant it: a relative one is resolved from the folder they ran the command
 * in. npm runs a workspace's scripts in the workspace's folder and sets INIT_CWD to the folder npm
 * was run from; without npm, that is the process's working directory.
 */
export function resolveUserPath(file: string, env: Record<string, string | undefined> = process.env): string {
  return path.resolve(env.INIT_CWD || process.cwd(), file);
}
