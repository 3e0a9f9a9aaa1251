#!/usr/bin/env node
// Bundles the CLI that tsc built (dist/apps/cli/src/main.js and every module of this repository
// it reaches, with the pure-JS packages the run path loads: yaml, commander) into one file,
// dist/apps/cli/src/main.bundle.js, which bin/capulator loads for `capulator run` without a
// daemon. One file instead of ~190: Node resolves, stats and reads each module it loads, and on
// this path that cost about as much as compiling them (apps/cli/src/compile-cache.ts keeps the
// compiled code of the bundle as of the modules). The input is tsc's output, so decorator
// metadata and everything else tsc emits are kept as they are.
//
// Left to Node (required from node_modules when used): native addons (better-sqlite3's JS is
// bundled; its addon is loaded by path: libs/events openDatabase, so its `bindings` package, left
// out, is never called), and the server's packages, which the run path never loads. Modules that find files beside their own
// (worker threads: the SQLite checkpointer, the gateway's replay and integrity workers) are the
// server's too: `capulator serve` and every command but `run` load dist/ as tsc wrote it.
import { build } from 'esbuild';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const entry = join(root, 'dist/apps/cli/src/main.js');
const outfile = join(root, 'dist/apps/cli/src/main.bundle.js');
// an empty tsconfig: esbuild must resolve @capulator/* to the built dist/ (libs/*/index.js), not
// follow tsconfig.json's paths to the TypeScript sources
const tsconfig = join(root, 'dist/.bundle-tsconfig.json');
writeFileSync(tsconfig, '{}\n');
const server = ['@nestjs/*', '@grpc/*', 'kafkajs', 'express', 'class-validator', 'class-transformer', 'rxjs', 'protobufjs', 'reflect-metadata', 'tar-stream', 'cli-progress'];
const built = Date.now();
const result = await build({
  metafile: true,
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  tsconfig,
  external: ['bindings', ...server],
  // each module's __dirname and __filename stay those of its file in dist/ (repoRoot, worker
  // scripts, the detached-run supervisor find their files from them), not the bundle's
  banner: { js: 'var __bundleDir = __dirname;' },
  plugins: [
    {
      name: 'own-dirname',
      setup(b) {
        b.onLoad({ filter: /\.js$/ }, (args) => {
          const text = readFileSync(args.path, 'utf8');
          if (!/__dirname|__filename/.test(text) || !args.path.startsWith(join(root, 'dist') + '/')) return undefined;
          const dir = relative(dirname(outfile), dirname(args.path));
          const prelude = `var __dirname = require("path").join(__bundleDir, ${JSON.stringify(dir)}), __filename = require("path").join(__dirname, ${JSON.stringify(basename(args.path))});`;
          return { contents: prelude + text, loader: 'js' };
        });
      },
    },
    {
      // bin/capulator starts the run's helpers (spares.js) before it loads the CLI; the runner must
      // take them from that same module, not from a copy inside the bundle
      name: 'shared-spares',
      setup(b) {
        b.onResolve({ filter: /(^|\/)spares$/ }, (args) =>
          args.resolveDir.endsWith(join('dist', 'apps', 'runtime', 'src', 'run')) || args.path.includes('runtime/src/run/spares')
            ? { path: '../../runtime/src/run/spares.js', external: true }
            : undefined,
        );
      },
    },
  ],
  logLevel: 'warning',
  legalComments: 'none',
});
// ASCII only: esbuild escapes every other character in code (charset 'ascii'), but keeps some
// comments as written, and one '…' in a comment makes Node decode the whole 1.6 MB file as UTF-8
// into a two-byte string (7-10 ms here, against ~1.5 ms for an ASCII file) on every cold run
const text = readFileSync(outfile, 'utf8').replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
writeFileSync(outfile, text);
// the compile cache compiles a module with a dynamic import() as Node does (no cached code): the
// bundle must have none, or it would be compiled anew on every run
if (text.includes('import(')) {
  console.error('bundle-cli: the bundle contains import(, which the compile cache cannot serve');
  process.exit(1);
}
// what bin/capulator checks before it loads the bundle: every input older than the bundle (a
// later tsc, or any change to a built module, makes it load the modules instead)
const inputs = Object.keys(result.metafile.inputs).map((f) => relative(root, join(root, f)));
for (const f of inputs) {
  if (statSync(join(root, f)).mtimeMs > built) {
    console.error(`bundle-cli: ${f} changed while the bundle was built; build again`);
    process.exit(1);
  }
}
writeFileSync(`${outfile}.inputs`, JSON.stringify({ built, inputs }) + '\n');
