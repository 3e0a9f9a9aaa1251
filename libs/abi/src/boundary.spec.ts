import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from './testing/repo';

/**
 * The pure libs stay pure (STYLE.md "Boundaries"): libs/abi and libs/policy import no
 * @nestjs/*, rxjs, kafkajs, class-validator or fs, and never read process.env, the clock or
 * randomness. Tests and their helpers (*.spec.ts, *.int-spec.ts, testing/ folders) may use fs.
 */
const FORBIDDEN_MODULES: Array<[RegExp, string]> = [
  [/^@nestjs\//, '@nestjs/*'],
  [/^rxjs(\/|$)/, 'rxjs'],
  [/^kafkajs(\/|$)/, 'kafkajs'],
  [/^class-validator(\/|$)/, 'class-validator'],
  [/^(node:)?fs(\/promises)?$/, 'fs'],
];
const FORBIDDEN_USES: Array<[RegExp, string]> = [
  [/\bprocess\s*\.\s*env\b/, 'process.env'],
  [/\bDate\s*\.\s*now\s*\(/, 'Date.now()'],
  [/\bnew\s+Date\s*\(\s*\)/, 'new Date() (the clock)'],
  [/\bMath\s*\.\s*random\s*\(/, 'Math.random()'],
  [/\b(randomBytes|randomUUID|randomInt|getRandomValues)\s*\(/, 'randomness'],
];

function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/(^|[^:'"`\\])\/\/[^\n]*/g, '$1');
}

/** Violations in one source text: "<what> (line N)". */
export function boundaryViolations(src: string): string[] {
  const out: string[] = [];
  const code = stripComments(src);
  const specRe = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;
  for (const m of code.matchAll(specRe)) {
    for (const [re, what] of FORBIDDEN_MODULES) {
      if (re.test(m[1])) out.push(`imports ${what} ('${m[1]}') (line ${code.slice(0, m.index).split('\n').length})`);
    }
  }
  code.split('\n').forEach((line, i) => {
    for (const [re, what] of FORBIDDEN_USES) if (re.test(line)) out.push(`uses ${what} (line ${i + 1})`);
  });
  return out;
}

function sources(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name === 'node_modules' || name === 'testing') continue;
      sources(p, out);
    } else if (/\.ts$/.test(name) && !/\.(spec|int-spec|e2e-spec)\.ts$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

describe('boundaries of the pure libs', () => {
  const root = repoRoot(__dirname);

  describe('the scanner', () => {
    it('catches each forbidden import and use, and ignores comments', () => {
      assert.equal(boundaryViolations("import { Injectable } from '@nestjs/common';").length, 1);
      assert.equal(boundaryViolations("import { readFileSync } from 'node:fs';").length, 1);
      assert.equal(boundaryViolations("const fs = require('fs');").length, 1);
      assert.equal(boundaryViolations("import 'rxjs/operators';").length, 1);
      assert.equal(boundaryViolations("const k = await import('kafkajs');").length, 1);
      assert.equal(boundaryViolations("import { IsString } from 'class-validator';").length, 1);
      assert.equal(boundaryViolations('const home = process.env.HOME;').length, 1);
      assert.equal(boundaryViolations('const t = Date.now();').length, 1);
      assert.equal(boundaryViolations('const t = new Date();').length, 1);
      assert.equal(boundaryViolations('const r = Math.random();').length, 1);
      assert.equal(boundaryViolations("import { randomUUID } from 'node:crypto'; randomUUID();").length, 1);
      assert.deepEqual(boundaryViolations("// process.env and Date.now() in a comment\n/* import 'fs' */\nconst d = new Date(iso);\nimport { x } from './fsutil';"), []);
    });
  });

  for (const lib of ['libs/abi', 'libs/policy']) {
    it(`${lib} sources import nothing impure and read no environment, clock or randomness`, () => {
      const files = sources(join(root, lib, 'src'));
      if (lib === 'libs/abi') assert.ok(files.length >= 7, `found only ${files.length} files`);
      const problems: string[] = [];
      for (const f of files) for (const v of boundaryViolations(readFileSync(f, 'utf8'))) problems.push(`${relative(root, f)}: ${v}`);
      assert.deepEqual(problems, []);
    });
  }
});
