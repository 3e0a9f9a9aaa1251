import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { cgroupV2Root, kernelRecordBinary } from './kernel-record';

/**
 * Which recording and enforcement mechanisms this host offers (`capulator abi host`). Every entry
 * is detected by trying it (loading and attaching the BPF program kinds, installing a seccomp
 * filter with a listener in a child, asking runc), never assumed from the kernel version.
 */
export interface HostMechanisms {
  kernel: string;
  /** per mechanism: 'ok' or why not (an errno name, 'unsupported', 'not built') */
  bpf: Record<string, string>;
  seccomp: Record<string, string>;
  /** the cgroup v2 hierarchy runs are scoped by, or null */
  cgroupV2: string | null;
  lsm: string[];
  /** seccomp filter flags runc can pass (`runc features`), null when it does not say (runc < 1.2) */
  runcSeccompFlags: string[] | null;
  /** what `capulator run` uses here */
  runUses: { kernelRecord: 'tp_btf' | 'none'; seccomp: string };
}

export function probeHostMechanisms(repo: string, runc = 'runc'): HostMechanisms {
  const bin = kernelRecordBinary(repo);
  let probed: Record<string, string> = {};
  if (bin) {
    const r = spawnSync(bin, ['probe'], { encoding: 'utf8', timeout: 20000 });
    try {
      probed = JSON.parse(r.stdout) as Record<string, string>;
    } catch {
      probed = { error: (r.stderr || `exit ${r.status}`).trim() };
    }
  }
  const bpf: Record<string, string> = {};
  const seccomp: Record<string, string> = {};
  for (const [k, v] of Object.entries(probed)) (k.startsWith('seccomp/') ? seccomp : bpf)[k.replace(/^seccomp\//, '')] = v;
  if (!bin) bpf['tp_btf/cap_capable'] = 'not built (capulator-kernel-record; npm run build)';
  let lsm: string[] = [];
  try {
    lsm = readFileSync('/sys/kernel/security/lsm', 'utf8').trim().split(',').filter(Boolean);
  } catch {
    /* securityfs not mounted */
  }
  let runcSeccompFlags: string[] | null = null;
  const f = spawnSync(runc, ['features'], { encoding: 'utf8', timeout: 10000 });
  try {
    const flags = (JSON.parse(f.stdout) as { linux?: { seccomp?: { supportedFlags?: string[] } } }).linux?.seccomp?.supportedFlags;
    runcSeccompFlags = flags ?? null;
  } catch {
    /* runc without `features` */
  }
  const cg = cgroupV2Root() ?? null;
  const tp = bpf['tp_btf/cap_capable'] === 'ok' && bpf['tp_btf/sched_process_exec'] === 'ok' && cg !== null;
  return {
    kernel: release(),
    bpf,
    seccomp,
    cgroupV2: cg,
    lsm,
    runcSeccompFlags,
    runUses: {
      kernelRecord: tp ? 'tp_btf' : 'none',
      seccomp: tp ? 'none when the policy needs no filter (libs/policy seccompNeed), else notify' : 'notify (every run: the agent alone records)',
    },
  };
}
