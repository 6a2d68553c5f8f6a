/**
 * @jest-environment-options {"database": false}
 */
import fs from 'node:fs';
import { parse } from 'yaml';
import { workerEnvSchema } from '../../../services/worker/src/env';
import { readmeConfigVariables } from './env-vars';
import { loadManifests, schemaErrors, type Manifest } from './k8s';
import { readRepoFile, repoPath, run } from './repo';

/**
 * infra/k8s: every document parses, has the expected kind, and validates against the Kubernetes
 * OpenAPI schemas shipped by the `kubernetes-models` package (offline). Those schemas do not
 * reject unknown fields, so what the deployment relies on (probes, ports, security context,
 * grace periods, references between objects) is asserted explicitly below.
 */
const manifests = loadManifests();
const find = (kind: string, name: string): Manifest => {
  const m = manifests.find((x) => x.kind === kind && x.name === name);
  if (!m) throw new Error(`no ${kind} ${name} in infra/k8s`);
  return m;
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const podSpec = (m: Manifest): any => m.body.spec.template.spec;
const config = find('ConfigMap', 'blog-config').body.data as Record<string, string>;

test('the expected objects, each once', () => {
  expect(manifests.map((m) => `${m.apiVersion} ${m.kind} ${m.name}`).sort()).toEqual(
    [
      'apps/v1 Deployment blog-api',
      'apps/v1 Deployment blog-worker',
      'batch/v1 Job blog-migrate',
      'policy/v1 PodDisruptionBudget blog-api',
      'v1 ConfigMap blog-config',
      'v1 Secret blog-secrets',
      'v1 Service blog-api',
    ].sort(),
  );
});

test.each(manifests.map((m) => [`${m.file}: ${m.kind} ${m.name}`, m] as const))('%s validates against its schema', async (_label, m) => {
  expect(await schemaErrors(m)).toEqual([]);
});

test('the validation does reject a broken manifest (the check is not vacuous)', async () => {
  const broken = structuredClone(find('Deployment', 'blog-api'));
  broken.body.spec.template.spec.containers[0].ports[0].containerPort = 'eight thousand';
  delete broken.body.spec.selector;
  const errors = await schemaErrors(broken);
  expect(errors.join('\n')).toMatch(/containerPort must be integer|must have required property 'selector'/);
});

test('kustomization.yaml lists every manifest file and names the two images', () => {
  const k = parse(readRepoFile('infra/k8s/kustomization.yaml'));
  const files = fs.readdirSync(repoPath('infra/k8s')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  expect([...k.resources].sort()).toEqual(files.sort());
  expect(k.images.map((i: { name: string }) => i.name).sort()).toEqual(['cqrs-blog/api', 'cqrs-blog/worker']);
});

const kubectl = run('kubectl', ['version', '--client']);
(kubectl.status === 0 ? test : test.skip)('kubectl kustomize builds it (when kubectl is installed)', () => {
  const r = run('kubectl', ['kustomize', 'infra/k8s']);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('image: cqrs-blog/api:0.1.0');
});

test('api Deployment: 2 replicas, /ready and /health probes on its port, resources, non-root, read-only root', () => {
  const api = find('Deployment', 'blog-api');
  expect(api.body.spec.replicas).toBe(2);
  const pod = podSpec(api);
  const c = pod.containers[0];
  expect(c.image).toBe('cqrs-blog/api');
  expect(c.ports).toEqual([{ name: 'http', containerPort: Number(config.PORT) }]);
  expect(c.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'http' });
  expect(c.livenessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
  expect(c.resources.requests).toBeDefined();
  expect(c.resources.limits.memory).toBeDefined();
  expect(pod.securityContext.runAsNonRoot).toBe(true);
  expect(c.securityContext).toMatchObject({
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  });
  // Longer than the API's own shutdown timeout plus the preStop pause.
  expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(config.SHUTDOWN_TIMEOUT_MS) + 5000);
});

test('api Service selects the API pods and targets the named port', () => {
  const svc = find('Service', 'blog-api');
  const api = find('Deployment', 'blog-api');
  expect(svc.body.spec.selector).toEqual(api.body.spec.selector.matchLabels);
  expect(api.body.spec.template.metadata.labels).toMatchObject(svc.body.spec.selector);
  expect(svc.body.spec.ports[0].targetPort).toBe('http');
  expect(find('PodDisruptionBudget', 'blog-api').body.spec.selector.matchLabels).toEqual(api.body.spec.selector.matchLabels);
});

test('worker Deployment: 2 replicas, liveness on its health port, a grace period above its shutdown timeout', () => {
  const worker = find('Deployment', 'blog-worker');
  expect(worker.body.spec.replicas).toBe(2);
  const pod = podSpec(worker);
  const c = pod.containers[0];
  expect(c.image).toBe('cqrs-blog/worker');
  expect(c.ports).toEqual([{ name: 'health', containerPort: Number(config.WORKER_HEALTH_PORT) }]);
  expect(c.livenessProbe.httpGet).toEqual({ path: '/health', port: 'health' });
  expect(pod.securityContext.runAsNonRoot).toBe(true);
  expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
  // The worker gives the batch in hand WORKER_SHUTDOWN_TIMEOUT_MS, then exits at the latest 5 s later.
  const shutdownMs = Number(config.WORKER_SHUTDOWN_TIMEOUT_MS ?? workerEnvSchema.shape.WORKER_SHUTDOWN_TIMEOUT_MS.parse(undefined));
  expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(shutdownMs + 5000);
});

test('migrate Job runs `migrate up` from the API image, once, non-root', () => {
  const job = find('Job', 'blog-migrate');
  const pod = podSpec(job);
  expect(pod.restartPolicy).toBe('Never');
  expect(pod.containers[0].image).toBe('cqrs-blog/api');
  expect(pod.containers[0].command).toEqual(['node', 'shared/dist/cli/migrate.js', 'up']);
  expect(pod.securityContext.runAsNonRoot).toBe(true);
});

test('every pod takes its configuration from the ConfigMap and the Secret, whose keys are documented variables', () => {
  for (const m of manifests.filter((x) => x.kind === 'Deployment' || x.kind === 'Job')) {
    expect(podSpec(m).containers[0].envFrom).toEqual([{ configMapRef: { name: 'blog-config' } }, { secretRef: { name: 'blog-secrets' } }]);
  }
  const documented = readmeConfigVariables();
  const secret = find('Secret', 'blog-secrets').body.stringData as Record<string, string>;
  expect([...Object.keys(config), ...Object.keys(secret)].filter((k) => !documented.includes(k))).toEqual([]);
  expect(Object.keys(secret).sort()).toEqual(['DATABASE_READ_URL', 'DATABASE_URL', 'JWT_SECRET', 'OPERATOR_TOKEN']);
});
