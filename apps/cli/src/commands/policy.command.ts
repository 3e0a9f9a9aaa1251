import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import {
  capabilitySets,
  didYouMean,
  printable,
  enforcementText,
  programSets,
  ruleEnforcement,
  compile,
  compileForContainer,
  evaluate,
  formatError,
  policyJsonSchema,
  privilegesReachedBy,
  describeRule,
  explainPolicy,
  type DecisionRequest,
  type LoadResult,
  type Policy,
  type PolicyRule,
} from '@capulator/policy';
import { CAPABILITIES, PRIVILEGES, privilegesOfCapability, capabilitiesOfPrivilege } from '@capulator/abi';
import { homePaths, fsErrorText } from '@capulator/host';
import { CliError } from '../cli-error';
import { loadPolicyFileText, readPolicyFile } from '../policy-file';
import { printJson, printTable } from '../output';

function readText(path: string): string {
  try {
    return readPolicyFile(path);
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

/** Loads a policy file; includes resolve relative to the including file. */
export function loadPolicyFile(path: string): LoadResult {
  return loadPolicyFileText(path, readText(path));
}

/** Loads or fails with the errors printed and exit code 1. */
function loadOrFail(path: string): Policy {
  const r = loadPolicyFile(path);
  if (!r.policy) {
    for (const e of [...r.errors, ...r.warnings]) process.stderr.write(formatError(e) + '\n');
    throw new CliError(`${path}: the policy has ${r.errors.length} error(s)`, 1);
  }
  return r.policy;
}

function intOpt(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,10}$/.test(v) || Number(v) > 4294967295) throw new CliError(`${what} must be a non-negative integer, not "${v}"`);
  return Number(v);
}

function labelsOpt(list: string[] | undefined): Record<string, string> | undefined {
  if (!list || list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new CliError(`--label wants key=value, not "${kv}"`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}
const collect = (v: string, prev: string[] = []) => [...prev, v];

function privName(name: string): string {
  const up = name.toUpperCase();
  const p = PRIVILEGES.find((x) => x.name === up);
  if (!p) {
    throw new CliError(`unknown privilege "${printable(name)}"${didYouMean(up, PRIVILEGES.map((x) => x.name))}`);
  }
  return p.name;
}
function capName(name: string): string {
  let up = name.toUpperCase();
  if (!up.startsWith('CAP_')) up = 'CAP_' + up;
  const c = CAPABILITIES.find((x) => x.name === up);
  if (!c) {
    throw new CliError(`unknown capability "${printable(name)}"${didYouMean(up, CAPABILITIES.map((x) => x.name))}`);
  }
  return c.name;
}

/** For each rule, its exe globs that name no regular file of the image (after symlinks inside it). */
async function exeGlobsMissingFrom(ref: string, rules: readonly PolicyRule[]): Promise<Map<PolicyRule, string[]>> {
  const { resolveImage } = await import('./run.command');
  const { withImageView, regularFilesMatching } = await import('../../../runtime/src/run/file-caps');
  const image = await resolveImage(ref, homePaths().images, process.cwd());
  try {
    return withImageView(image.layers, (rootfs) => {
      const out = new Map<PolicyRule, string[]>();
      for (const r of rules) {
        const gone = (r.match.exe ?? []).filter((g) => !/^\/?\*\*?$/.test(g) && regularFilesMatching(rootfs, g).length === 0);
        if (gone.length > 0) out.set(r, gone);
      }
      return out;
    });
  } catch (e) {
    throw new CliError(`--image ${ref}: ${(e as Error).message}`);
  }
}

/** `capulator policy …` — lint, explain, evaluate and compile policies (libs/policy). */
export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('Policies: lint, explain, eval, caps, compile, schema');

  policy
    .command('lint')
    .description('check policy files; exit 1 when any has errors (warnings are printed but pass)')
    .argument('<files...>', 'policy YAML files')
    .option('--image <ref>', 'also warn about exe globs that match no regular file of this image (a store reference or a rootfs directory)')
    .option('--json', 'machine-readable output')
    .action(async (files: string[], opts: { json?: boolean; image?: string }) => {
      const results = files.map((f) => ({ file: f, ...loadPolicyFile(f) }));
      if (opts.image) {
        const missing = await exeGlobsMissingFrom(opts.image, results.flatMap((r) => (r.policy ? r.policy.rules : [])));
        for (const r of results) {
          for (const rule of r.policy?.rules ?? []) {
            for (const g of missing.get(rule) ?? []) {
              r.warnings.push({ code: 'EXE_NOT_IN_IMAGE', severity: 'warning', location: rule.location, message: `rule "${rule.id}": exe ${g} matches no regular file of image ${opts.image}; a per-program grant gives it nothing` });
            }
          }
        }
      }
      const failed = results.some((r) => r.errors.length > 0);
      if (opts.json) {
        printJson(
          results.map((r) => ({
            file: r.file,
            valid: r.errors.length === 0,
            version: r.policy?.version ?? null,
            errors: r.errors,
            warnings: r.warnings,
            enforcement: r.policy ? ruleEnforcement(r.policy) : [],
          })),
        );
      } else {
        for (const r of results) {
          for (const e of [...r.errors, ...r.warnings].sort((a, b) => a.location.line - b.location.line || a.location.col - b.location.col)) {
            process.stdout.write(formatError(e) + '\n');
          }
          if (r.errors.length === 0) {
            process.stdout.write(`${r.file}: ok (${r.policy!.rules.length} rules, version ${r.policy!.version}${r.warnings.length ? `, ${r.warnings.length} warning(s)` : ''})\n`);
            for (const e of ruleEnforcement(r.policy!)) process.stdout.write(`  rule ${e.ruleId} (${e.action}): ${enforcementText(e.enforcedBy)}\n`);
          }
        }
      }
      if (failed) process.exitCode = 1;
    });

  policy
    .command('explain')
    .description('which rules decide what, which capabilities a subject gets and why, which untrapped operations ride along')
    .argument('<file>', 'policy YAML file')
    .option('--cap <CAP>', 'explain one capability')
    .option('--priv <PRIV>', 'explain one privilege')
    .option('--exe <path>', 'subject program')
    .option('--uid <n>', 'subject uid (default 0)')
    .option('--gid <n>', 'subject gid (default 0)')
    .option('--image <ref>', 'container image')
    .option('--label <k=v>', 'container label (repeatable)', collect)
    .option('--json', 'machine-readable output')
    .action((file: string, opts: { cap?: string; priv?: string; exe?: string; uid?: string; gid?: string; image?: string; label?: string[]; json?: boolean }) => {
      const p = loadOrFail(file);
      const uid = intOpt(opts.uid, '--uid') ?? 0;
      const gid = intOpt(opts.gid, '--gid') ?? 0;
      const labels = labelsOpt(opts.label);
      let privs: string[];
      if (opts.priv) privs = [privName(opts.priv)];
      else if (opts.cap) privs = privilegesOfCapability(capName(opts.cap));
      else privs = [];
      const explained = explainPolicy(p, { uid, gid, image: opts.image, labels });
      const caps = explained.capabilities;
      const perPriv = privs.map((priv) => {
        const rules = p.rules.filter((r) => privilegesReachedBy(r).includes(priv)).map((r) => ({ id: r.id, action: r.action, conditions: describeRule(r) }));
        const decision = evaluate(p, { privilege: priv, exe: opts.exe, uid, gid, image: opts.image, labels } as DecisionRequest);
        return { privilege: priv, capabilities: capabilitiesOfPrivilege(priv), rules, decision };
      });
      const enforced = new Map(explained.rules.map((r) => [r.id, r.enforcedBy]));
      const out = {
        policy: { ...explained.policy, rules: explained.rules },
        subject: { exe: opts.exe ?? null, uid, gid, image: opts.image ?? null },
        privileges: perPriv,
        capabilities: caps,
      };
      if (opts.json) return printJson(out);
      const w = (s: string) => process.stdout.write(s + '\n');
      w(`policy ${p.name} (version ${p.version})${p.learn ? ' — LEARN MODE: everything is allowed and recorded' : ''}`);
      w(`defaults: ${p.defaults.action}${p.defaults.action === 'deny' ? ` (errno ${p.defaults.errno})` : ''}, audit ${p.defaults.audit}`);
      w('');
      printTable(
        ['#', 'rule', 'action', 'privileges', 'conditions', 'enforced by'],
        p.rules.map((r) => [
          r.index + 1,
          r.id,
          r.action,
          r.privileges ? (r.privileges.length > 4 ? `${r.privileges.slice(0, 4).join(',')},… (${r.privileges.length})` : r.privileges.join(',')) : 'any',
          describeRule(r),
          enforcementText(enforced.get(r.id) ?? []),
        ]),
      );
      for (const pp of perPriv) {
        w('');
        w(`${pp.privilege} (${pp.capabilities.join(', ') || 'no capability'}):`);
        if (pp.rules.length === 0) w('  no rule names it; defaults decide');
        for (const r of pp.rules) w(`  rule ${r.id}: ${r.action} when ${r.conditions}`);
        const d = pp.decision;
        w(`  for exe=${opts.exe ?? '(any)'} uid=${uid}: ${d.decision}${d.ruleId ? ` by rule ${d.ruleId}` : ' by defaults'}${d.errno ? ` (errno ${d.errno})` : ''}${d.return !== undefined ? ` (returns ${d.return})` : ''}`);
      }
      w('');
      const held = opts.exe ? programSets(caps, opts.exe) : caps.sets;
      w(`capabilities for ${opts.exe ? `${opts.exe} run by ` : ''}uid ${uid} gid ${gid}${opts.image ? ` image ${opts.image}` : ''}: ${held.effective.join(', ') || '(none)'}`);
      for (const [cap, grants] of Object.entries(caps.provenance)) {
        w(`  ${cap}: ${grants.map((g) => `${g.source === 'rule' ? `rule ${g.ruleId}` : g.source} (${g.privileges.slice(0, 3).join(', ')}${g.privileges.length > 3 ? ', …' : ''})${g.exe ? ` as a file capability of ${g.exe.join(', ')}` : ''}`).join('; ')}`);
      }
      if (caps.untrapped.length > 0) {
        w('');
        w('untrapped operations that ride along (the agent cannot decide these per call):');
        for (const u of caps.untrapped) w(`  ${u.capability} → ${u.privilege}: ${u.note}`);
      }
    });

  policy
    .command('eval')
    .description('decide one request: {"syscall":…,"args":{…},"exe":…,"uid":…} or {"privilege":…,"exe":…,"uid":…}')
    .argument('<file>', 'policy YAML file')
    .requiredOption('--request <json>', 'the request as JSON')
    .option('--json', 'machine-readable output (the default)')
    .action((file: string, opts: { request: string }) => {
      const p = loadOrFail(file);
      let req: unknown;
      try {
        req = JSON.parse(opts.request);
      } catch (err) {
        throw new CliError(`--request is not valid JSON: ${(err as Error).message}`);
      }
      if (!req || typeof req !== 'object' || Array.isArray(req)) throw new CliError('--request must be a JSON object');
      const r = req as DecisionRequest;
      if (r.privilege === undefined && r.syscall === undefined) throw new CliError('--request needs "syscall" or "privilege"');
      if (r.privilege !== undefined) {
        if (typeof r.privilege !== 'string') throw new CliError('"privilege" must be a string');
        r.privilege = privName(r.privilege);
      }
      if (r.syscall !== undefined && typeof r.syscall !== 'string') throw new CliError('"syscall" must be a string');
      for (const k of ['uid', 'gid'] as const) if (r[k] !== undefined && !(Number.isInteger(r[k]) && r[k]! >= 0)) throw new CliError(`"${k}" must be a non-negative integer`);
      if (r.exe !== undefined && typeof r.exe !== 'string') throw new CliError('"exe" must be a string');
      if (r.args !== undefined && (typeof r.args !== 'object' || r.args === null || Array.isArray(r.args))) throw new CliError('"args" must be an object');
      printJson(evaluate(p, r));
    });

  policy
    .command('caps')
    .description("a container's start-time capability sets, with the rules that grant each capability")
    .argument('<file>', 'policy YAML file')
    .requiredOption('--uid <n>', 'container uid')
    .option('--gid <n>', 'container gid (default: the uid)')
    .option('--image <ref>', 'container image')
    .option('--label <k=v>', 'container label (repeatable)', collect)
    .option('--exe <path>', 'the sets of this program (after symlinks), with its file capabilities')
    .option('--json', 'machine-readable output')
    .action((file: string, opts: { uid: string; gid?: string; image?: string; label?: string[]; exe?: string; json?: boolean }) => {
      const p = loadOrFail(file);
      const uid = intOpt(opts.uid, '--uid')!;
      const gid = intOpt(opts.gid, '--gid') ?? uid;
      const r = capabilitySets(p, { uid, gid, image: opts.image, labels: labelsOpt(opts.label) });
      const sets = opts.exe ? programSets(r, opts.exe) : { ...r.sets, fileCapabilities: undefined };
      const kernel = { securebits: r.securebits, noNewPrivileges: r.noNewPrivileges, programs: r.programs };
      if (opts.json) return printJson({ ...sets, ...kernel, provenance: r.provenance, untrapped: r.untrapped });
      for (const k of ['bounding', 'permitted', 'effective', 'inheritable', 'ambient'] as const) {
        process.stdout.write(`${k.padEnd(11)} ${sets[k].join(',') || '(none)'}\n`);
      }
      process.stdout.write(`${'securebits'.padEnd(11)} ${r.securebits.join(',') || '(none)'}\n`);
      process.stdout.write(`${'no-new-privs'.padEnd(11)} ${r.noNewPrivileges ? 'on' : 'off (file capabilities)'}\n`);
      if (sets.fileCapabilities) process.stdout.write(`${'file caps'.padEnd(11)} ${sets.fileCapabilities.join(',') || '(none)'}\n`);
      for (const g of r.programs) process.stdout.write(`program    ${g.capabilities.join(',')} as file capabilities of ${g.exe.join(', ')} (rule ${g.ruleId})\n`);
      if (Object.keys(r.provenance).length > 0) {
        process.stdout.write('\n');
        printTable(['capability', 'granted by', 'privileges'], Object.entries(r.provenance).flatMap(([cap, gs]) => gs.map((g) => [cap, g.source === 'rule' ? `rule ${g.ruleId}` : g.source, g.privileges.join(',')])));
      }
      if (r.untrapped.length > 0) process.stdout.write(`\n${r.untrapped.length} untrapped privilege(s) ride along; see "capulator policy explain ${file}"\n`);
    });

  policy
    .command('compile')
    .description('the compiled decision table the native agent loads')
    .argument('<file>', 'policy YAML file')
    .option('-o, --output <file>', 'write the table here instead of stdout')
    .option('--image <ref>', 'compile for one container image (drops rules that cannot match it)')
    .option('--label <k=v>', 'container label, with --image (repeatable)', collect)
    .action((file: string, opts: { output?: string; image?: string; label?: string[] }) => {
      const p = loadOrFail(file);
      const t = opts.image !== undefined || opts.label ? compileForContainer(p, { image: opts.image, labels: labelsOpt(opts.label) }) : compile(p);
      if (opts.output) {
        try {
          writeFileSync(opts.output, t.text);
        } catch (err) {
          throw new CliError(`cannot write ${opts.output}: ${fsErrorText(err)}`);
        }
        process.stderr.write(`${opts.output}: ${t.rules} rules, ${t.hash}\n`);
      } else process.stdout.write(t.text);
    });

  policy
    .command('schema')
    .description('a JSON Schema of the policy language, for editors')
    .action(() => printJson(policyJsonSchema()));
}
