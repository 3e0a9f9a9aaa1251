export * from './contracts';
export * from './store';
