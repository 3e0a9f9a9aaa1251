export * from './image.errors';
export * from './refs';
export { ImageStore, ResolvedImage, ImagePlatform, ImageConfigSubset, ImportOptions, StoreLimits, DEFAULT_STORE_LIMITS, imageImportedPayload, limitsFromEnv, registrySourceOf } from './image-store';
export { checkEntryName, ExtractLimits, DEFAULT_LIMITS } from './safe-extract';
