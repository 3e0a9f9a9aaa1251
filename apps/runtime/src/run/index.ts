export * from './runner';
export * from './agent-process';
export * from './oci-spec';
export * from './seccomp-profile';
export * from './entrypoint-check';
export * from './rootfs-path';
export * from './file-caps';
