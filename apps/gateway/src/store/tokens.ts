/** Injection tokens for the gateway's ports. */
export const EVENT_STORE = Symbol('EventStore');
export const RUN_EXECUTOR = Symbol('RunExecutor');
export const POLICY_ENGINE = Symbol('PolicyEngine');
export const IMAGE_CATALOG = Symbol('ImageCatalog');
export const REPLAYER = Symbol('Replayer');
export const GATEWAY_OPTIONS = Symbol('GatewayOptions');
export const RUN_ANCHORER = Symbol('RunAnchorer');
