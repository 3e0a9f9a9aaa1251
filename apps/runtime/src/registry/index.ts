export * from './registry.errors';
export * from './reference';
export * from './auth';
export * from './platform';
export * from './manifest';
export { RegistryClient, clearTokenCache } from './client';
export { pullImage, tagForStore } from './pull';
export type { PullStore, PullOptions, PullProgress, LayerState } from './pull';
