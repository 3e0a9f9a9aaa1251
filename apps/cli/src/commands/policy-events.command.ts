import { Command } from 'commander';
import { compile } from '@capulator/policy';
import { EventStoreError, privilegeUses, publishPolicy, suggestPolicy, WrongExpectedVersion } from '@capulator/events';
import { CliError } from '../cli-error';
import { printJson } from '../output';
import { loadPolicyForReplay, openStore, readFileOrFail } from './audit.command';

/**
 * `policy suggest` and `policy publish`: the policy subcommands that read or write the event log.
 * Attached to the `policy` command by registerAuditCommands (or by whoever builds `policy`).
 */
export function registerPolicyEventCommands(policy: Command): void {
  if (policy.commands.some((c) => c.name() === 'suggest')) return;

  policy
    .command('suggest')
    .description('the least-privilege policy that would have allowed everything the runs did (one commented rule per privilege used)')
    .requiredOption('--run <id...>', 'runs to learn from (typically run with --learn)')
    .option('--name <name>', 'policy name (default suggested-<first run>)')
    .option('--json', 'machine-readable output')
    .action(async (o: { run: string[]; name?: string; json?: boolean }) => {
      const { store } = openStore();
      try {
        const known = store.db.prepare('SELECT 1 FROM rm_runs WHERE run_id = ?').pluck();
        for (const id of o.run) if (!known.get(id)) throw new CliError(`no run ${id} in the log`);
        const name = o.name ?? `suggested-${o.run[0]}`.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 63);
        const s = suggestPolicy(name, o.run, privilegeUses(store.db, o.run));
        if (o.json) printJson(s);
        else process.stdout.write(s.yaml);
      } finally {
        await store.close();
      }
    });

  policy
    .command('publish')
    .description('record a policy in the log as a new version of policy-<name>; runs then name it NAME (latest) or NAME@VERSION')
    .argument('<file>', 'policy YAML file')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: { json?: boolean }) => {
      const yaml = readFileOrFail(file);
      const p = loadPolicyForReplay(file);
      const table = compile(p);
      const { store } = openStore();
      try {
        const r = await publishPolicy(store, { name: p.name, yaml, hash: table.hash, description: p.description }, new Date().toISOString());
        if (o.json) printJson({ name: r.name, version: r.version, hash: r.hash, position: r.position, published: r.published });
        else if (r.published) process.stdout.write(`published ${r.name}@${r.version} (${r.hash}) at position ${r.position}\n`);
        else process.stdout.write(`unchanged: ${r.name}@${r.version} already has this content (${r.hash})\n`);
      } catch (err) {
        if (err instanceof WrongExpectedVersion) throw new CliError(`policy ${p.name} was published concurrently; try again`, 1);
        if (err instanceof EventStoreError) throw new CliError(err.message);
        throw err;
      } finally {
        await store.close();
      }
    });
}
