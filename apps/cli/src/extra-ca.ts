/**
 * NODE_EXTRA_CA_CERTS, honoured from this process's first use of TLS rather than from its start.
 *
 * Node 20, when that variable is set, reads the file and builds its whole root store (its bundled
 * roots and the file's certificates, all parsed) before it runs any code: ~30 ms here with
 * Debian's ca-certificates bundle in it, a fifth of a cold `capulator run`, which makes no TLS
 * connection at all unless orphan recovery reaches a Kafka bus over TLS. So capulator-run
 * (agent/src/run-client.c) hands it to the Node it execs for such a run as
 * CAPULATOR_DEFERRED_EXTRA_CA_CERTS instead, and bin/capulator calls takeDeferredExtraCaCerts().
 *
 * The trust is Node's own: every secure context made without a `ca` of its own (tls.connect,
 * https, kafkajs, servers) trusts Node's bundled roots and the file's certificates, as with the
 * variable; one given a `ca` trusts only that, as with the variable. A file that cannot be read
 * is warned about as Node does, and the bundled roots are trusted alone. `tls` is not loaded for
 * this (~4 ms): the trust is added when a module that makes TLS connections is first required, or
 * fetch (which loads its own internally) first called.
 */
import { readFileSync } from 'node:fs';
import Module from 'node:module';
import type * as Tls from 'node:tls';

/** The variable capulator-run passes the deferred file in. */
export const DEFERRED_EXTRA_CA_VAR = 'CAPULATOR_DEFERRED_EXTRA_CA_CERTS';

/** Requiring one of these may lead to a TLS connection. */
const TLS_USERS = new Set(['tls', 'https', 'http2', '_tls_wrap', '_tls_common'].flatMap((m) => [m, `node:${m}`]));

type Load = (request: string, parent: unknown, isMain: boolean) => unknown;

/**
 * Takes the deferred file from the environment (NODE_EXTRA_CA_CERTS is set again, for the
 * processes this one starts) and trusts it from the first TLS module on. Does nothing when there
 * is none.
 */
export function takeDeferredExtraCaCerts(env: NodeJS.ProcessEnv = process.env): void {
  const file = env[DEFERRED_EXTRA_CA_VAR];
  delete env[DEFERRED_EXTRA_CA_VAR];
  if (!file) return;
  env.NODE_EXTRA_CA_CERTS = file;
  let trusted = false;
  const trust = () => {
    if (trusted) return;
    trusted = true;
    trustExtraCaCerts(require('node:tls') as typeof Tls, file);
  };
  const M = Module as unknown as { _load: Load };
  const load = M._load;
  M._load = function (request, parent, isMain) {
    const exports = load.call(this, request, parent, isMain);
    if (!trusted && TLS_USERS.has(request)) trust();
    return exports;
  };
  const fetch = globalThis.fetch;
  if (fetch) {
    globalThis.fetch = function (this: unknown, ...args: Parameters<typeof fetch>) {
      trust();
      return fetch.apply(this, args);
    };
  }
}

function trustExtraCaCerts(tls: typeof Tls, file: string): void {
  let pem: string;
  try {
    pem = readFileSync(file, 'latin1');
  } catch (err) {
    process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(err as Error).message}`);
    return;
  }
  const ca = [...tls.rootCertificates, pem];
  const create = tls.createSecureContext;
  // tls.connect and the TLS server take the module's createSecureContext as they are called
  (tls as { createSecureContext: typeof create }).createSecureContext = function (options?: Tls.SecureContextOptions) {
    return create.call(this, options?.ca === undefined ? { ...options, ca } : options);
  };
}
