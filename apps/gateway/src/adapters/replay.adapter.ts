import { ReadModelProjector, SqliteEventStore, whatIf, whatIfExitCode, type EventStore, type WhatIfChange } from '@capulator/events';
import { capabilitySets, evaluate, load } from '@capulator/policy';
import { PolicyInvalid, Unavailable } from '../errors/domain.error';
import type { Replayer, ReplayReport, ReplayRequest } from '../replays/replayer';

const MAX_CHANGES = 1000;

/** libs/events' what-if over the SQLite read models, with libs/policy as the policy under test. */
export class EventsReplayer implements Replayer {
  private projector: ReadModelProjector | undefined;

  constructor(private readonly store: EventStore) {}

  async whatIf(req: ReplayRequest): Promise<ReplayReport> {
    if (!(this.store instanceof SqliteEventStore)) throw new Unavailable('what-if replay needs the SQLite store');
    const loaded = load(req.policyYaml, 'policyYaml');
    if (!loaded.policy || loaded.errors.length > 0) {
      throw new PolicyInvalid(loaded.errors.map((e) => ({ code: e.code, message: e.message, location: `${e.location.file}:${e.location.line}:${e.location.col}` })));
    }
    const policy = loaded.policy;
    this.projector ??= new ReadModelProjector(this.store);
    this.projector.catchUp();
    const changes: WhatIfChange[] = [];
    let total = 0;
    const summary = whatIf(
      this.store.db,
      {
        evaluate: (r) => evaluate(policy, r),
        startCapabilities: (c) => capabilitySets(policy, c).sets.bounding,
      },
      { ...(req.runIds ? { runIds: req.runIds } : {}), ...(req.since ? { since: req.since } : {}) },
      (c) => {
        total++;
        if (changes.length < MAX_CHANGES) changes.push(c);
      },
    );
    return {
      policy: { name: policy.name, hash: policy.version },
      examined: summary.decisions,
      changed: summary.changed + summary.capabilityChanges,
      wouldDeny: summary.regressions + summary.capabilityRegressions,
      exitCode: whatIfExitCode(summary),
      summary,
      changes,
      truncated: total > changes.length,
    };
  }
}
