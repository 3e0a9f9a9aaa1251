import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TextEvent, type NewEvent } from '../contracts';
import { InvalidEvent } from '../errors';
import { decision } from '../testing/fixtures';
import { decodeProposal, encodeProposal, Sequencer, type Proposal } from './sequencer';

const text = (e: NewEvent) => new TextEvent(e.type, e.at, JSON.stringify(e.payload));
const fold = (p: Proposal) => {
  const v = new Sequencer().apply(p);
  assert.ok(v.ok, 'accepted');
  return v.events.flat().map((e) => ({ position: e.position, streamVersion: e.streamVersion, type: e.type, at: e.at, payload: e.payload, hash: e.hash }));
};

describe('the proposal record (format 2)', () => {
  it('carries each payload text verbatim, one line each, after a JSON head', () => {
    const agentText = '{"runId":"r1","seq":1,  "note":"spaces kept"}';
    const rec = encodeProposal({ id: 'w:1', requests: [{ streamId: 'run-r1', expectedVersion: 'no-stream', events: [new TextEvent('PrivilegeChecked', '2026-01-01T00:00:00Z', agentText), decision('r1', 2)] }] });
    const lines = rec.split('\n');
    assert.equal(lines.length, 3);
    assert.deepEqual(JSON.parse(lines[0]), { v: 2, id: 'w:1', requests: [{ streamId: 'run-r1', expectedVersion: 'no-stream', events: [['PrivilegeChecked', '2026-01-01T00:00:00Z'], ['PrivilegeChecked', decision('r1', 2).at]] }] });
    assert.equal(lines[1], agentText);
    const back = decodeProposal(Buffer.from(rec))!;
    assert.equal(back.requests[0].events[0].payloadText, agentText, 'not re-serialised');
    assert.deepEqual(back.requests[0].events[1].payload, decision('r1', 2).payload);
  });

  it('folds to the same positions, versions and hashes as a format 1 record of the same events', () => {
    const events = [decision('r1', 1), decision('r1', 2, { syscall: 'bind', nr: 49 })];
    const v1 = Buffer.from(JSON.stringify({ id: 'w:1', requests: [{ streamId: 'run-r1', expectedVersion: 'any', events }] }));
    const v2 = Buffer.from(encodeProposal({ id: 'w:1', requests: [{ streamId: 'run-r1', expectedVersion: 'any', events: events.map(text) }] }));
    const a = fold(decodeProposal(v1)!);
    const b = fold(decodeProposal(v2)!);
    assert.equal(a.length, 2);
    assert.deepEqual(b, a);
  });

  it('keeps a written schema version and several streams apart', () => {
    const rec = encodeProposal({
      id: 'w:2',
      seen: { position: 4, hash: 'ab'.repeat(32) },
      requests: [
        { streamId: 'run-a', expectedVersion: 3, events: [{ ...decision('a', 4), schemaVersion: 1 }] },
        { streamId: 'run-b', expectedVersion: 'any', events: [decision('b', 1), decision('b', 2)] },
      ],
    });
    const p = decodeProposal(Buffer.from(rec))!;
    assert.deepEqual(p.seen, { position: 4, hash: 'ab'.repeat(32) });
    assert.deepEqual(p.requests.map((r) => [r.streamId, r.expectedVersion, r.events.length]), [['run-a', 3, 1], ['run-b', 'any', 2]]);
    assert.equal(p.requests[0].events[0].schemaVersion, 1);
    assert.equal(p.requests[1].events[0].schemaVersion, undefined);
  });

  it('is not a proposal when its lines do not match its events, or its head is not one', () => {
    const rec = encodeProposal({ id: 'w:3', requests: [{ streamId: 'run-r', expectedVersion: 'any', events: [decision('r', 1), decision('r', 2)] }] });
    const lines = rec.split('\n');
    assert.equal(decodeProposal(Buffer.from(lines.slice(0, 2).join('\n'))), undefined, 'a line missing');
    assert.equal(decodeProposal(Buffer.from(rec + '\n{}')), undefined, 'a line too many');
    assert.equal(decodeProposal(Buffer.from('{"v":3,"id":"x","requests":[]}')), undefined, 'an unknown format');
    assert.equal(decodeProposal(Buffer.from('{"id":"x","requests":[]}\n{}')), undefined, 'format 1 has one line');
    assert.equal(decodeProposal(Buffer.from('not json')), undefined);
    assert.equal(decodeProposal(Buffer.from('{"v":2,"id":"x","requests":[{"streamId":"run-r","expectedVersion":"any","events":["PrivilegeChecked"]}]}\n{}')), undefined, 'an event that is not [type, at]');
  });

  it('refuses payloads that are not one-line JSON objects, writer and readers alike', () => {
    assert.throws(() => encodeProposal({ id: 'w:4', requests: [{ streamId: 'run-r', expectedVersion: 'any', events: [{ ...decision('r', 1), payload: 42 as never }] }] }), InvalidEvent);
    const seq = new Sequencer();
    assert.match(String(seq.precheck([{ streamId: 'run-r', expectedVersion: 'any', events: [new TextEvent('PrivilegeChecked', 'now', '{"a":1}\n{"b":2}')] }])), /one line/);
    // a record whose payload line is not an object is rejected by the fold, the same in every reader
    const forged = '{"v":2,"id":"x","requests":[{"streamId":"run-r","expectedVersion":"any","events":[["PrivilegeChecked","now"]]}]}\n[1,2]';
    const v = seq.apply(decodeProposal(Buffer.from(forged))!);
    assert.equal(v.ok, false);
    assert.equal(seq.count, 0);
  });
});
