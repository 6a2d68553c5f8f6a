import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoPath } from './repo';

export interface Manifest {
  file: string;
  apiVersion: string;
  kind: string;
  name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** Every document of every .yaml file in infra/k8s except the kustomization; throws on YAML errors. */
export function loadManifests(dir = repoPath('infra', 'k8s')): Manifest[] {
  const out: Manifest[] = [];
  for (const file of fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
    .sort()) {
    const docs = parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8'));
    for (const doc of docs) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const body = doc.toJS() as Manifest['body'];
      if (body == null) continue;
      out.push({ file, apiVersion: body.apiVersion, kind: body.kind, name: body.metadata?.name, body });
    }
  }
  return out;
}

/**
 * The kubernetes-models module of an apiVersion (`v1` -> core, `apps/v1` -> apps/v1), loaded with
 * import(): the package is ESM only. Its classes validate against the Kubernetes OpenAPI schemas
 * (types, required fields, enums, formats); unknown fields are not rejected, so the tests also
 * assert the fields the deployment relies on.
 */
async function modelsFor(apiVersion: string): Promise<Record<string, unknown>> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const spec = group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
  return (await import(spec)) as Record<string, unknown>;
}

/** Schema problems of one manifest: [] when valid. */
export async function schemaErrors(m: Manifest): Promise<string[]> {
  let models: Record<string, unknown>;
  try {
    models = await modelsFor(m.apiVersion);
  } catch {
    return [`unknown apiVersion ${m.apiVersion}`];
  }
  const Model = models[m.kind] as (new (data: unknown) => { validate(): void }) | undefined;
  if (!Model) return [`unknown kind ${m.kind} in ${m.apiVersion}`];
  try {
    new Model(m.body).validate();
    return [];
  } catch (err) {
    return [err instanceof Error ? err.message : String(err)];
  }
}
