import { Command } from 'commander';

/** `capulator abi …` — facts about the Linux ABI (libs/abi). */
export function registerAbiCommands(program: Command): void {
  program.command('abi').description('Linux ABI facts: capabilities, priv(9), the cap→priv map, syscalls, ELF');
}
