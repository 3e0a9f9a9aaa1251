import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join } from 'node:path';

/**
 * Container networking through CNI plugins (Debian's containernetworking-plugins: bridge,
 * host-local IPAM, portmap, loopback), the way podman, containerd and nerdctl use them.
 *
 * - `none`   (the default): a network namespace of its own with only loopback (runc creates it
 *            and brings `lo` up, as for any new network namespace it makes). No CNI plugin runs.
 * - `bridge`: the runtime creates a named netns (`ip netns add`), runs the conflist's plugins
 *            (ADD) in it, and gives runc the netns as a path. Containers on the bridge reach each
 *            other; `-p` publishes ports through portmap (also on the host's 127.0.0.1).
 * - `host`:  no network namespace: the host's interfaces.
 *
 * The plugins run as children of the runtime, outside the container's cgroup and before the
 * container exists: their privilege checks are the runtime's and are never recorded as the
 * container's. What was set up is written to RUN_DIR/network.json before the first plugin runs,
 * so `releaseNetwork(runDir)` undoes it (CNI DEL, netns removal) on every exit path, also after
 * a crash (recovery calls it).
 */
export type NetworkMode = 'none' | 'bridge' | 'host';
export const NETWORK_MODES: readonly NetworkMode[] = ['none', 'bridge', 'host'];
export const DEFAULT_NETWORK: NetworkMode = 'none';

/** The network capulator writes to $CAPULATOR_HOME/cni/capulator.conflist when there is none. */
export const CNI_NETWORK = { name: 'capulator', bridge: 'capulator0', subnet: '10.91.0.0/16' } as const;
/** Where host-local keeps its leases: per host (not per home), since the bridge is per host; /run so a reboot clears them with the bridge. */
export const CNI_IPAM_DIR = '/run/capulator/cni/ipam';
export const CNI_PLUGIN_PATH = ['/usr/lib/cni', '/opt/cni/bin'];
const NETNS_DIR = '/run/netns';
const CNI_VERSION = '1.0.0';
const PLUGIN_TIMEOUT_MS = 30_000;

export interface PortMapping {
  hostIP?: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** Parses `-p [IP:]HOSTPORT:PORT[/udp|/tcp]`; throws Error with the reason. */
export function parsePublish(spec: string): PortMapping {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(spec);
  if (!m) throw new Error(`-p ${spec}: want [IP:]HOSTPORT:PORT[/udp]`);
  const port = (s: string) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`-p ${spec}: port ${s} is not in 1-65535`);
    return n;
  };
  if (m[1] && m[1].split('.').some((o) => Number(o) > 255)) throw new Error(`-p ${spec}: ${m[1]} is not an IPv4 address`);
  return { ...(m[1] ? { hostIP: m[1] } : {}), hostPort: port(m[2]), containerPort: port(m[3]), protocol: (m[4] as 'tcp' | 'udp') ?? 'tcp' };
}

interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [k: string]: unknown;
}
interface ConfList {
  cniVersion: string;
  name: string;
  plugins: PluginConf[];
}

/** The state of a run's network, kept in RUN_DIR/network.json until it is released. */
interface NetworkState {
  version: 1;
  netns: string;
  containerId: string;
  ifName: string;
  conf: ConfList;
  portMappings: PortMapping[];
  /** the last plugin's ADD result (passed to DEL as prevResult) */
  result?: unknown;
}

export interface NetworkSetup {
  /** the netns path runc joins */
  netnsPath: string;
  /** the container's addresses (CIDR) on the bridge */
  addresses: string[];
  /** files to bind-mount into the container (/etc/resolv.conf, /etc/hosts) */
  files: { source: string; destination: string }[];
}

export function defaultConfList(): ConfList {
  return {
    cniVersion: CNI_VERSION,
    name: CNI_NETWORK.name,
    plugins: [
      {
        type: 'bridge',
        bridge: CNI_NETWORK.bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: CNI_NETWORK.subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: CNI_IPAM_DIR },
      },
      // snat (the default) masquerades hairpin and 127.0.0.1 traffic and sets route_localnet on the bridge
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'loopback' },
    ],
  };
}

/** $CAPULATOR_HOME/cni/capulator.conflist, written with the default network when absent. */
export function loadConfList(home: string): ConfList {
  const dir = join(home, 'cni');
  const file = join(dir, `${CNI_NETWORK.name}.conflist`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(defaultConfList(), null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, file);
  }
  let c: ConfList;
  try {
    c = JSON.parse(readFileSync(file, 'utf8')) as ConfList;
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  if (typeof c.name !== 'string' || !Array.isArray(c.plugins) || c.plugins.some((p) => typeof p?.type !== 'string' || !/^[A-Za-z0-9_-]+$/.test(p.type))) {
    throw new Error(`${file}: want a CNI conflist ({cniVersion, name, plugins: [{type, …}]})`);
  }
  return { cniVersion: c.cniVersion ?? CNI_VERSION, name: c.name, plugins: c.plugins };
}

function pluginBinary(type: string): string {
  for (const d of CNI_PLUGIN_PATH) if (existsSync(join(d, type))) return join(d, type);
  throw new Error(`CNI plugin ${type} is not installed (looked in ${CNI_PLUGIN_PATH.join(', ')}; Debian: apt-get install containernetworking-plugins)`);
}

function pluginInput(st: NetworkState, p: PluginConf, prevResult: unknown): string {
  const conf: Record<string, unknown> = { ...p, cniVersion: st.conf.cniVersion, name: st.conf.name };
  if (p.capabilities?.portMappings && st.portMappings.length > 0) conf.runtimeConfig = { portMappings: st.portMappings };
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return JSON.stringify(conf);
}

function pluginEnv(st: NetworkState, command: 'ADD' | 'DEL'): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH && process.env.PATH.includes('/usr/sbin') ? process.env.PATH : `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    CNI_COMMAND: command,
    CNI_CONTAINERID: st.containerId,
    CNI_NETNS: join(NETNS_DIR, st.netns),
    CNI_IFNAME: st.ifName,
    CNI_PATH: CNI_PLUGIN_PATH.join(':'),
  };
}

function pluginError(type: string, code: number | null, stdout: string, stderr: string): string {
  try {
    const e = JSON.parse(stdout) as { msg?: string; details?: string };
    if (e.msg) return `CNI plugin ${type}: ${e.msg}${e.details ? ` (${e.details})` : ''}`;
  } catch {
    /* not a CNI error object */
  }
  return `CNI plugin ${type} failed (exit ${code})${stderr.trim() ? ': ' + stderr.trim().split('\n').pop() : ''}`;
}

function runPlugin(st: NetworkState, p: PluginConf, prevResult: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let bin: string;
    try {
      bin = pluginBinary(p.type);
    } catch (e) {
      return reject(e);
    }
    const child = spawn(bin, [], { env: pluginEnv(st, 'ADD'), stdio: ['pipe', 'pipe', 'pipe'], timeout: PLUGIN_TIMEOUT_MS });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('error', (e) => reject(new Error(`CNI plugin ${p.type}: ${e.message}`)));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(pluginError(p.type, code, out, err)));
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`CNI plugin ${p.type} printed no JSON result`));
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(pluginInput(st, p, prevResult));
  });
}

const stateFile = (runDir: string) => join(runDir, 'network.json');

const showMapping = (m: PortMapping) => `${m.hostIP ? `${m.hostIP}:` : ''}${m.hostPort}:${m.containerPort}${m.protocol === 'udp' ? '/udp' : ''}`;
/** Two host addresses that a port cannot be published on twice (no address: all of them). */
const overlaps = (a: PortMapping, b: PortMapping) =>
  a.hostPort === b.hostPort && a.protocol === b.protocol && (!a.hostIP || !b.hostIP || a.hostIP === b.hostIP);

/**
 * Why a port of `mappings` cannot be published, as docker says it ("port is already allocated"), or
 * undefined: the same host port twice in this run, a port another run of this home publishes (its
 * network.json, beside this run's directory), or one a host program holds (a bind of it here fails;
 * the portmap plugin's DNAT would otherwise take its traffic without a word).
 */
async function portConflict(runDir: string, mappings: PortMapping[]): Promise<string | undefined> {
  const said = (m: PortMapping, why: string) => `-p ${showMapping(m)}: port ${m.hostPort}/${m.protocol} is already allocated (${why})`;
  for (let i = 0; i < mappings.length; i++)
    for (let j = 0; j < i; j++) if (overlaps(mappings[i], mappings[j])) return said(mappings[i], `-p ${showMapping(mappings[j])} of this run`);
  if (mappings.length === 0) return undefined;
  const runs = dirname(runDir);
  for (const other of readdirSync(runs)) {
    if (other === basename(runDir)) continue;
    let theirs: PortMapping[];
    try {
      theirs = (JSON.parse(readFileSync(stateFile(join(runs, other)), 'utf8')) as NetworkState).portMappings ?? [];
    } catch {
      continue; // no network, or not a run
    }
    for (const m of mappings) if (theirs.some((t) => overlaps(m, t))) return said(m, `run ${other} publishes it`);
  }
  for (const m of mappings) {
    const e = await tryBind(m);
    if (e) return said(m, `a program of this host holds it: ${e}`);
  }
  return undefined;
}

/** Binds the host port a mapping names, and lets it go at once: the error code when it cannot. */
function tryBind(m: PortMapping): Promise<string | undefined> {
  const host = m.hostIP ?? '0.0.0.0';
  return new Promise((resolve) => {
    if (m.protocol === 'udp') {
      const s = createSocket('udp4');
      s.once('error', (e: NodeJS.ErrnoException) => {
        try {
          s.close();
        } catch {
          /* never bound */
        }
        resolve(e.code === 'EADDRNOTAVAIL' ? undefined : (e.code ?? e.message));
      });
      s.bind(m.hostPort, host, () => s.close(() => resolve(undefined)));
      return;
    }
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'EADDRNOTAVAIL' ? undefined : (e.code ?? e.message)));
    srv.listen({ port: m.hostPort, host, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}

/**
 * Creates the run's netns and attaches it to the bridge (CNI ADD through the conflist's
 * plugins). On failure everything done so far is released and the error thrown.
 */
export async function setupNetwork(opts: {
  home: string;
  runDir: string;
  containerId: string;
  hostname: string;
  portMappings: PortMapping[];
}): Promise<NetworkSetup> {
  const conf = loadConfList(opts.home);
  const st: NetworkState = { version: 1, netns: opts.containerId, containerId: opts.containerId, ifName: 'eth0', conf, portMappings: opts.portMappings };
  if (opts.portMappings.length > 0 && !conf.plugins.some((p) => p.capabilities?.portMappings)) {
    throw new Error(`-p needs a plugin with the portMappings capability (portmap) in the ${conf.name} conflist`);
  }
  for (const p of conf.plugins) pluginBinary(p.type); // every plugin present before anything is changed
  // recorded first: whatever happens next, releaseNetwork finds it (and a run starting beside this
  // one sees its ports: of two that race for a port, at least one is refused)
  writeFileSync(stateFile(opts.runDir), JSON.stringify(st), { mode: 0o600 });
  const taken = await portConflict(opts.runDir, opts.portMappings);
  if (taken) {
    rmSync(stateFile(opts.runDir), { force: true });
    throw new Error(taken);
  }
  const add = spawnSync('ip', ['netns', 'add', st.netns], { encoding: 'utf8' });
  if (add.status !== 0) {
    // not ours (another run with this container id holds it): leave it alone
    rmSync(stateFile(opts.runDir), { force: true });
    throw new Error(`ip netns add ${st.netns}: ${(add.stderr || add.error?.message || '').trim()}`);
  }
  try {
    let result: unknown;
    for (const p of conf.plugins) {
      result = await runPlugin(st, p, result);
      st.result = result;
      writeFileSync(stateFile(opts.runDir), JSON.stringify(st), { mode: 0o600 });
    }
    const addresses = ((result as { ips?: { address: string }[] })?.ips ?? []).map((i) => i.address);
    return { netnsPath: join(NETNS_DIR, st.netns), addresses, files: writeEtcFiles(opts.runDir, opts.hostname, addresses) };
  } catch (e) {
    releaseNetwork(opts.runDir);
    throw e;
  }
}

/** /etc/resolv.conf (the host's, without loopback name servers, which are not reachable from the netns) and /etc/hosts. */
function writeEtcFiles(runDir: string, hostname: string, addresses: string[]): { source: string; destination: string }[] {
  let resolv = '';
  try {
    resolv = readFileSync('/etc/resolv.conf', 'utf8')
      .split('\n')
      .filter((l) => !/^\s*nameserver\s+(127\.|::1\b)/.test(l))
      .join('\n');
  } catch {
    /* no resolver configuration on the host */
  }
  const hosts = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ...addresses.map((a) => `${a.split('/')[0]}\t${hostname}`)].join('\n') + '\n';
  writeFileSync(join(runDir, 'resolv.conf'), resolv, { mode: 0o644 });
  writeFileSync(join(runDir, 'hosts'), hosts, { mode: 0o644 });
  return [
    { source: join(runDir, 'resolv.conf'), destination: '/etc/resolv.conf' },
    { source: join(runDir, 'hosts'), destination: '/etc/hosts' },
  ];
}

/**
 * Releases what setupNetwork set up for the run in `runDir` (CNI DEL through the plugins in
 * reverse order, then the netns); a no-op when there is nothing to release. Safe to call more
 * than once and after a crash of the runtime (recovery of orphaned runs calls it before
 * removing the run directory). Returns the errors it met (the rest is still released).
 */
export function releaseNetwork(runDir: string): { released: boolean; errors: string[] } {
  let st: NetworkState;
  try {
    st = JSON.parse(readFileSync(stateFile(runDir), 'utf8')) as NetworkState;
  } catch {
    return { released: false, errors: [] };
  }
  const errors: string[] = [];
  const nsExists = existsSync(join(NETNS_DIR, st.netns));
  for (const p of [...st.conf.plugins].reverse()) {
    let bin: string;
    try {
      bin = pluginBinary(p.type);
    } catch (e) {
      errors.push((e as Error).message);
      continue;
    }
    // without the netns, DEL still releases the address and the port mappings (CNI_NETNS may be absent on DEL)
    const env = pluginEnv(st, 'DEL');
    if (!nsExists) env.CNI_NETNS = '';
    const r = spawnSync(bin, [], { env, input: pluginInput(st, p, st.result), encoding: 'utf8', timeout: PLUGIN_TIMEOUT_MS });
    if (r.status !== 0) errors.push(pluginError(p.type, r.status, r.stdout ?? '', r.stderr ?? ''));
  }
  if (nsExists) {
    const d = spawnSync('ip', ['netns', 'delete', st.netns], { encoding: 'utf8' });
    if (d.status !== 0) errors.push(`ip netns delete ${st.netns}: ${(d.stderr ?? '').trim()}`);
  }
  rmSync(stateFile(runDir), { force: true });
  return { released: true, errors };
}
