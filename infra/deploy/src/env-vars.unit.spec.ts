/**
 * @jest-environment-options {"database": false}
 */
import { envFileVariables, envReadsIn, readmeConfigVariables, zodObjectKeys } from './env-vars';

test('zod object keys: top level only, past strings, comments and regular expressions', () => {
  const source = `
    const a = z.object({
      // A comment with a colon: NOT_A_KEY: here
      URL: z.string({ error: 'is required (postgres://x)' }).refine((v) => /^postgres(ql)?:\\/\\//.test(v), { error: 'bad' }),
      NESTED: z.object({ lower: z.string() }).default({ lower: 'INNER: x' }),
      /* BLOCK: comment */ PORT: intVar(8000, 0, 65535),
      'QUOTED': z.string(),
      lowerCase: z.string(),
      LAST: z.string()
    }).refine((e) => e.PORT > 0, { path: ['PORT'] });
    const b = z.object({ ONE: z.string(), TWO: z.string() });
  `;
  expect(zodObjectKeys(source)).toEqual(['URL', 'NESTED', 'PORT', 'LAST', 'ONE', 'TWO']);
});

test('direct reads: process.env.X, process.env["X"], env.X', () => {
  const source =
    `const a = process.env.ALPHA; const b = process.env['BETA']; ` + `const c = env.GAMMA ?? env["DELTA"]; const d = other.EPSILON;`;
  expect(envReadsIn(source).sort()).toEqual(['ALPHA', 'BETA', 'DELTA', 'GAMMA']);
});

test('README rows and .env lines', () => {
  const readme = '# x\n## Configuration\n\n| variable | default |\n|---|---|\n| `ONE` | 1 |\n| `TWO` | 2 |\n\n## Next\n| `THREE` | 3 |\n';
  expect(readmeConfigVariables(readme)).toEqual(['ONE', 'TWO']);
  expect(envFileVariables('A=1\n# B=2\n#C=3\n# a comment: D=4\nE=\n')).toEqual({ set: ['A', 'E'], commented: ['B', 'C'] });
});
