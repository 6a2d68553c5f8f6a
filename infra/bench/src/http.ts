import type { GraphqlRequest } from './documents';

export interface GraphqlAnswer {
  status: number;
  /** The parsed body, when it was JSON. */
  body?: { data?: unknown; errors?: { message?: string }[] };
  text: string;
}

/** One POST /graphql, as a client would send it. */
export async function postGraphql(baseUrl: string, request: GraphqlRequest, timeoutMs = 60_000): Promise<GraphqlAnswer> {
  const res = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(request),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body: GraphqlAnswer['body'];
  try {
    body = JSON.parse(text) as GraphqlAnswer['body'];
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

/** A response body as one short line (HTML tags dropped, whitespace collapsed). */
export function oneLine(text: string, max = 200): string {
  return text
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, max);
}

/** What is wrong with an answer before its data can be looked at, or undefined. */
export function answerProblem(answer: GraphqlAnswer): string | undefined {
  if (answer.status !== 200) return `HTTP ${answer.status}: ${oneLine(answer.text)}`;
  if (!answer.body) return `not JSON: ${oneLine(answer.text)}`;
  if (answer.body.errors?.length) return `GraphQL errors: ${oneLine(answer.body.errors.map((e) => e.message).join('; '), 300)}`;
  if (answer.body.data === undefined || answer.body.data === null) return 'no data';
  return undefined;
}
