import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentAbiHeader, AGENT_ABI_HEADER } from './agent-abi-tables';

const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');

describe('agent abi.generated.h', () => {
  describe('when compared with libs/abi', () => {
    it('is up to date (regenerate: node dist/apps/runtime/src/run/agent-abi-tables.js --write)', () => {
      assert.equal(readFileSync(join(repo, AGENT_ABI_HEADER), 'utf8'), agentAbiHeader());
    });
  });
});
