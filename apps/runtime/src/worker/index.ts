export * from './commands';
export * from './runtime-worker';
