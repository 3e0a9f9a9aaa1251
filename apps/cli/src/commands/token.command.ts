import { Command } from 'commander';
import { homePaths } from '@capulator/host';
import { TokenError, TokenStore } from '../../../gateway/src/auth/token-store';
import { SCOPES } from '../../../gateway/src/auth/scopes';
import { CliError } from '../cli-error';
import { printJson, printTable } from '../output';

function store(): TokenStore {
  return new TokenStore(homePaths().tokens);
}

/**
 * `capulator token create|ls|revoke` — API tokens for `capulator serve`, stored hashed in
 * $CAPULATOR_HOME/tokens.json. `create` prints the token once, alone on the last line.
 */
export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('API tokens for the gateway (capulator serve)');

  token
    .command('create')
    .description('create a token; it is printed once, alone on the last line of stdout')
    .requiredOption('--name <name>', 'a unique name for the token')
    .requiredOption('--scopes <list>', `comma-separated scopes: ${SCOPES.join(', ')}`)
    .action((opts: { name: string; scopes: string }) => {
      const scopes = opts.scopes.split(',').map((s) => s.trim()).filter(Boolean);
      try {
        const { token: secret, record } = store().create(opts.name, scopes);
        process.stdout.write(`created token ${record.name} with scopes ${record.scopes.join(',')}; it is shown only once:\n${secret}\n`);
      } catch (err) {
        if (err instanceof TokenError) throw new CliError(err.message);
        throw err;
      }
    });

  token
    .command('ls')
    .description('list tokens (names and scopes; the tokens themselves are not stored)')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const records = store().list().map((r) => ({ name: r.name, scopes: r.scopes, createdAt: r.createdAt }));
      if (opts.json) printJson(records);
      else printTable(['NAME', 'SCOPES', 'CREATED'], records.map((r) => [r.name, r.scopes.join(','), r.createdAt]));
    });

  token
    .command('revoke')
    .description('revoke a token by name (a running server refuses it from its next request)')
    .argument('<name>')
    .action((name: string) => {
      if (!store().revoke(name)) throw new CliError(`no token named ${name}`);
      process.stdout.write(`revoked token ${name}\n`);
    });
}
