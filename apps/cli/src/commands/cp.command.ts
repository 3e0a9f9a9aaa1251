import type { Command } from 'commander';
import { copyFileSync, existsSync, statSync } from 'node:fs';
import { basename, join, resolve as resolvePath } from 'node:path';
import { homePaths, fsErrorText } from '@capulator/host';
import { findArtifact, listArtifacts } from '../../../runtime/src/run/artifacts';
import { CliError } from '../cli-error';

/**
 * `capulator cp RUN:NAME DEST`: copies a file a run left (a core dump: `core`) out of
 * $CAPULATOR_HOME/artifacts/RUN/. DEST may be a directory (the file keeps its name).
 */
export function registerCpCommands(program: Command): void {
  program
    .command('cp')
    .description("copy a run's artifact (e.g. its core dump) to the host: capulator cp RUN:core .")
    .argument('<run:name>', 'run id and artifact name (capulator cp RUN: lists them)')
    .argument('[dest]', 'file or directory (default: .)', '.')
    .action((src: string, dest: string) => {
      const i = src.indexOf(':');
      if (i <= 0) throw new CliError(`${src}: want RUN:NAME (e.g. RUN:core)`);
      const run = src.slice(0, i);
      const name = src.slice(i + 1);
      const home = homePaths().home;
      if (name === '') {
        const names = listArtifacts(home, run);
        if (names.length === 0) throw new CliError(`run ${run} has no artifacts`);
        process.stdout.write(names.join('\n') + '\n');
        return;
      }
      const from = findArtifact(home, run, name);
      if (!from && name.includes('/')) {
        throw new CliError(`${src}: capulator cp copies what a run left (capulator cp ${run}: lists it), not files of its filesystem; from a running run, capulator exec ${run} -- cat ${name} > FILE reads one`);
      }
      if (!from) {
        const names = listArtifacts(home, run);
        throw new CliError(`run ${run} has no artifact ${name}${names.length ? ` (it has: ${names.join(', ')})` : ''}`);
      }
      let to = resolvePath(dest);
      if (existsSync(to) && statSync(to).isDirectory()) to = join(to, basename(from));
      try {
        copyFileSync(from, to);
      } catch (e) {
        throw new CliError(`cp ${src} ${dest}: ${fsErrorText(e)}`, 1);
      }
    });
}
