import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentLimitsHeader, AGENT_LIMITS_HEADER } from './agent-limits';

const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');

describe('agent limits.generated.h', () => {
  describe('when compared with libs/policy TABLE_LIMITS', () => {
    it('is up to date (regenerate: node dist/apps/runtime/src/run/agent-limits.js --write)', () => {
      assert.equal(readFileSync(join(repo, AGENT_LIMITS_HEADER), 'utf8'), agentLimitsHeader());
    });
  });
});
