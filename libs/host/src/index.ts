export * from './home';
export * from './repo';
