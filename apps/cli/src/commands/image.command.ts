import { Command } from 'commander';

export function registerImageCommands(program: Command): void {
  void program;
}
