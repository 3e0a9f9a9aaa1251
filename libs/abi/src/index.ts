/**
 * @capulator/abi — facts about the Linux ABI as typed data and pure functions:
 * capabilities and the capget/capset data layout, the FreeBSD priv(9) catalogue, the
 * capability → privilege map, syscall tables, constant tables, the syscall classifier and an
 * ELF reader. No I/O, no clock, no randomness.
 */
export * from './capabilities';
export * from './privileges';
export * from './capmap';
export * from './syscalls.generated';
export * from './constants';
export * from './classify';
export * from './elf';
