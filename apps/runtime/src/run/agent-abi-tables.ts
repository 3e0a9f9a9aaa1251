/**
 * Generates agent/src/abi.generated.h from libs/abi: the constant names, priv(9) numbers, the
 * capability → privilege map and the interface-ioctl privileges the native agent's classifier
 * mirrors. `node dist/apps/runtime/src/run/agent-abi-tables.js --write` regenerates it; a spec
 * fails when the checked-in header drifts from libs/abi.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ADJ_MODES,
  AF,
  CAPABILITIES,
  CLOCKS,
  IOCTL_PRIVILEGES,
  IP_OPTIONS,
  IPV6_OPTIONS,
  PRCTL_OPTIONS,
  PRIVILEGES,
  PTRACE_REQUESTS,
  REBOOT_CMDS,
  RLIMIT,
  SCHED_POLICIES,
  SIOC,
  SO,
  SOCK,
  SOL,
  TCP_OPTIONS,
  constantName,
  privilegesOfCapability,
  type ConstantTable,
} from '@capulator/abi';

function names(cName: string, t: ConstantTable): string {
  const values = [...new Set(Object.values(t))].sort((a, b) => a - b);
  const rows = values.map((v) => `  {${v}, "${constantName(t, v)}"},`);
  return `static const struct gname ${cName}[] = {\n${rows.join('\n')}\n};\n`;
}

export function agentAbiHeader(): string {
  const out: string[] = [
    '/* GENERATED from libs/abi by apps/runtime/src/run/agent-abi-tables.ts — do not edit. */',
    '#ifndef CAPULATOR_ABI_GENERATED_H',
    '#define CAPULATOR_ABI_GENERATED_H',
    'struct gname { long v; const char *n; };',
    'struct gpriv { const char *name; int number; };',
    'struct gioctl { const char *request; const char *priv; };',
    '',
  ];
  const tables: Array<[string, ConstantTable]> = [
    ['GEN_AF', AF], ['GEN_SOCK', SOCK], ['GEN_SOL', SOL], ['GEN_SO', SO], ['GEN_IP_OPTIONS', IP_OPTIONS],
    ['GEN_IPV6_OPTIONS', IPV6_OPTIONS], ['GEN_TCP_OPTIONS', TCP_OPTIONS], ['GEN_PRCTL', PRCTL_OPTIONS], ['GEN_RLIMIT', RLIMIT],
    ['GEN_SIOC', SIOC], ['GEN_SCHED', SCHED_POLICIES], ['GEN_CLOCKS', CLOCKS], ['GEN_PTRACE', PTRACE_REQUESTS],
    ['GEN_REBOOT', REBOOT_CMDS], ['GEN_ADJ', ADJ_MODES],
  ];
  for (const [n, t] of tables) out.push(names(n, t));
  const privs = [...PRIVILEGES].sort((a, b) => a.number - b.number);
  out.push(`static const struct gpriv GEN_PRIVS[] = {\n${privs.map((p) => `  {"${p.name}", ${p.number}},`).join('\n')}\n};\n`);
  const caps = [...CAPABILITIES].sort((a, b) => a.number - b.number);
  out.push(`#define GEN_NCAPS ${caps.length}`);
  out.push(`static const char *const GEN_CAPNAMES[GEN_NCAPS] = {\n${caps.map((c) => `  "${c.name}",`).join('\n')}\n};`);
  out.push(`/* per capability number: its privileges, space separated */`);
  out.push(`static const char *const GEN_CAPPRIVS[GEN_NCAPS] = {\n${caps.map((c) => `  "${privilegesOfCapability(c.name).join(' ')}",`).join('\n')}\n};\n`);
  const io = Object.entries(IOCTL_PRIVILEGES).sort(([a], [b]) => a.localeCompare(b));
  out.push(`static const struct gioctl GEN_IOCTL_PRIVS[] = {\n${io.map(([r, p]) => `  {"${r}", "${p}"},`).join('\n')}\n};\n`);
  out.push('#endif');
  return out.join('\n') + '\n';
}

export const AGENT_ABI_HEADER = 'agent/src/abi.generated.h';

if (require.main === module) {
  const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
  const path = join(repo, AGENT_ABI_HEADER);
  const text = agentAbiHeader();
  if (process.argv.includes('--write')) writeFileSync(path, text);
  else if (readFileSync(path, 'utf8') !== text) {
    process.stderr.write(`${AGENT_ABI_HEADER} is out of date; run with --write\n`);
    process.exit(1);
  }
}
