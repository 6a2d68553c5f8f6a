export * from './env-vars';
export * from './k8s';
export * from './repo';
