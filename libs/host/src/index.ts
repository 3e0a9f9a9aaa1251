export * from './home';
export * from './repo';
export * from './fs-error';
