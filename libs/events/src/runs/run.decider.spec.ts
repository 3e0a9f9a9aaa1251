import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { NewEvent } from '../contracts';
import { caps, decision, runExited, runRequested, runStarted } from '../testing/fixtures';
import { decide, endCommand, foldRun, RunLifecycleError, type RunCommand } from './run.decider';

const ID = 'r1';
const AT = '2026-12-04T18:00:00.000Z';

/** given the run's past events, when a command, then the events it decides (or the error it raises). */
function given(events: NewEvent[]) {
  const state = foldRun(ID, events.map((e, i) => ({ type: e.type, payload: e.payload, streamVersion: i + 1 })));
  return {
    when: (cmd: RunCommand) => ({
      then: (expected: Array<Pick<NewEvent, 'type'> & { payload?: object }>) => {
        const got = decide(cmd, state);
        assert.deepEqual(got.map((e) => e.type), expected.map((e) => e.type));
        expected.forEach((e, i) => e.payload && assert.deepEqual(got[i].payload, e.payload));
      },
      thenRefused: (code: RunLifecycleError['code']) => {
        assert.throws(() => decide(cmd, state), (err: unknown) => err instanceof RunLifecycleError && err.code === code);
      },
    }),
    state,
  };
}

const agentDied: RunCommand = { type: 'FailRun', at: AT, stage: 'agent', reason: 'the agent died while the container ran' };
const exit: RunCommand = { type: 'ExitRun', at: AT, exit: { exitCode: 0, signal: null, counts: { allow: 1, deny: 0, emulate: 0 }, lostEvents: 0, durationMs: 5 } };
const request: RunCommand = { type: 'RequestRun', at: AT, request: runRequested(ID).payload };

describe('run decider (given/when/then)', () => {
  it('given [] when RequestRun then [RunRequested]', () => given([]).when(request).then([{ type: 'RunRequested' }]));

  it('given [RunRequested] when RequestRun then refused: a run id is used once', () => given([runRequested(ID)]).when(request).thenRefused('RUN_EXISTS'));

  it('given [RunRequested, RunStarted] when AgentDied then [RunFailed] with its stage and reason', () =>
    given([runRequested(ID), runStarted(ID, ['CAP_NET_RAW'])])
      .when(agentDied)
      .then([{ type: 'RunFailed', payload: { runId: ID, stage: 'agent', reason: 'the agent died while the container ran' } }]));

  it('given [RunRequested, RunStarted, RunFailed] when ExitRun then refused, and the state keeps the failure', () => {
    const g = given([runRequested(ID), runStarted(ID, []), { type: 'RunFailed', at: AT, payload: { runId: ID, stage: 'agent', reason: 'died' } }]);
    g.when(exit).thenRefused('RUN_ENDED');
    g.when(agentDied).thenRefused('RUN_ENDED');
    g.when({ type: 'RecordDecisions', events: [decision(ID, 1)] }).thenRefused('RUN_ENDED');
    assert.equal(g.state.phase, 'failed');
    assert.deepEqual(g.state.failure, { stage: 'agent', reason: 'died' });
  });

  it('given [RunRequested, RunStarted, RunExited] when FailRun then refused: exactly one terminal event', () =>
    given([runRequested(ID), runStarted(ID, []), runExited(ID)]).when(agentDied).thenRefused('RUN_ENDED'));

  it('given [RunRequested] when ExitRun then refused: nothing started', () => given([runRequested(ID)]).when(exit).thenRefused('ILLEGAL'));

  it('given [] when FailRun or StartRun then refused: no such run', () => {
    given([]).when(agentDied).thenRefused('NO_RUN');
    given([]).when({ type: 'ClaimRun', at: AT, worker: 'w' }).thenRefused('NO_RUN');
  });

  it('given [RunRequested, RunClaimed] when ClaimRun then refused: one claimant', () =>
    given([runRequested(ID), { type: 'RunClaimed', at: AT, payload: { runId: ID, worker: 'a' } }])
      .when({ type: 'ClaimRun', at: AT, worker: 'b' })
      .thenRefused('ILLEGAL'));

  it('given [RunRequested] when StartRun then [RunStarted] with the granted sets, and provenance only for granted capabilities', () => {
    const granted = caps(['CAP_NET_RAW']);
    given([runRequested(ID)])
      .when({
        type: 'StartRun',
        at: AT,
        imageDigest: 'sha256:x',
        user: { uid: 0, gid: 0 },
        granted,
        provenance: { CAP_NET_RAW: ['ping'], CAP_SYS_ADMIN: ['admin'] },
        policy: runRequested(ID).payload.policy,
        pid: 42,
      })
      .then([{ type: 'RunStarted', payload: { runId: ID, imageDigest: 'sha256:x', user: { uid: 0, gid: 0 }, capabilities: granted, provenance: { CAP_NET_RAW: ['ping'] }, policy: runRequested(ID).payload.policy, pid: 42 } }]);
  });

  it('given [RunRequested, RunStarted] when RecordDecisions then the decisions, untouched; lifecycle events are not decisions', () => {
    const d = [decision(ID, 1), decision(ID, 2)];
    const g = given([runRequested(ID), runStarted(ID, [])]);
    assert.equal(decide({ type: 'RecordDecisions', events: d }, g.state), d);
    g.when({ type: 'RecordDecisions', events: [runExited(ID) as never] }).thenRefused('ILLEGAL');
  });

  it('given an ended run when RecoverDecisions then the decisions, and CompleteRecord then RunRecordCompleted; both refused while the run is open', () => {
    const lost: RunCommand = { type: 'FailRun', at: AT, stage: 'runtime', reason: 'worker lost: w1' };
    const ended = given([runRequested(ID), runStarted(ID, []), decision(ID, 1), { type: 'RunFailed', at: AT, payload: { runId: ID, stage: 'runtime', reason: 'worker lost: w1' } }]);
    ended.when({ type: 'RecoverDecisions', events: [decision(ID, 2), decision(ID, 3)] }).then([{ type: 'PrivilegeChecked' }, { type: 'PrivilegeChecked' }]);
    ended.when({ type: 'CompleteRecord', at: AT, recovered: 2, lostEvents: 0 }).then([{ type: 'RunRecordCompleted', payload: { runId: ID, recovered: 2, lostEvents: 0 } }]);
    ended.when({ type: 'RecoverDecisions', events: [runExited(ID) as never] }).thenRefused('ILLEGAL');
    // still one terminal event: the ended run refuses another end
    ended.when(lost).thenRefused('RUN_ENDED');
    const open = given([runRequested(ID), runStarted(ID, [])]);
    open.when({ type: 'RecoverDecisions', events: [decision(ID, 1)] }).thenRefused('ILLEGAL');
    open.when({ type: 'CompleteRecord', at: AT, recovered: 1, lostEvents: 0 }).thenRefused('ILLEGAL');
    given([]).when({ type: 'RecoverDecisions', events: [decision(ID, 1)] }).thenRefused('NO_RUN');
  });

  it('endCommand: a failed outcome is one FailRun keeping the exit and the loss; an exited one is ExitRun', () => {
    const base = { exitCode: null, signal: null, counts: { allow: 3, deny: 1, emulate: 0 }, lostEvents: 2, durationMs: 9 };
    const f = endCommand({ ...base, status: 'failed', failure: { stage: 'agent', reason: 'died' } }, AT);
    assert.equal(f.type, 'FailRun');
    const [ev] = given([runRequested(ID), runStarted(ID, [])]).state && decide(f, foldRun(ID, [runRequested(ID), runStarted(ID, [])]));
    assert.equal(ev.type, 'RunFailed');
    assert.equal((ev.payload as { lostEvents: number }).lostEvents, 2);
    assert.equal((ev.payload as { stage: string }).stage, 'agent');
    assert.equal(endCommand({ ...base, status: 'exited', exitCode: 0 }, AT).type, 'ExitRun');
  });
});
