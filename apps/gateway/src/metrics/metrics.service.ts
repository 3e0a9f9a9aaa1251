import { Injectable } from '@nestjs/common';
import type { StoredEvent } from '@capulator/events';
import { EventHub } from '../store/event-hub';

/** seconds; trapped-call latencies are microseconds to milliseconds */
const LATENCY_BUCKETS = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 1e-1];
const DECISION_TYPES = new Set(['PrivilegeChecked', 'CapabilitiesQueried', 'CapabilitiesChangeRequested']);

class Histogram {
  readonly counts = new Array<number>(LATENCY_BUCKETS.length).fill(0);
  sum = 0;
  count = 0;
  observe(v: number): void {
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) if (v <= LATENCY_BUCKETS[i]) this.counts[i] += 1;
    this.sum += v;
    this.count += 1;
  }
}

/** Prometheus metrics, folded from the hub; rendered in the text exposition format (0.0.4). */
@Injectable()
export class MetricsService {
  private submitted = 0;
  private readonly decisions = new Map<string, number>([['allow', 0], ['deny', 0], ['emulate', 0]]);
  private readonly ended = new Map<string, number>([['exited', 0], ['failed', 0]]);
  private readonly latency = new Histogram();
  private lagSeconds = 0;
  private lastPosition = 0;

  constructor(hub: EventHub) {
    hub.listen((e) => this.observe(e));
  }

  runSubmitted(): void {
    this.submitted += 1;
  }

  private observe(e: StoredEvent): void {
    this.lastPosition = Math.max(this.lastPosition, e.position);
    const at = Date.parse(e.at);
    if (Number.isFinite(at)) this.lagSeconds = Math.max(0, (Date.now() - at) / 1000);
    if (DECISION_TYPES.has(e.type)) {
      const p = e.payload as StoredEvent<'PrivilegeChecked'>['payload'];
      this.decisions.set(p.decision, (this.decisions.get(p.decision) ?? 0) + 1);
      if (e.type === 'PrivilegeChecked' && typeof p.latencyNs === 'number') this.latency.observe(p.latencyNs / 1e9);
    } else if (e.type === 'RunExited') this.ended.set('exited', this.ended.get('exited')! + 1);
    else if (e.type === 'RunFailed') this.ended.set('failed', this.ended.get('failed')! + 1);
  }

  render(
    runsByStatus: Record<string, number>,
    queue?: { queued: number; running: number },
    bus?: { brokerUp: boolean; outages: number; recoveries?: number; consumerRestarts?: number; lag: number; produceFailures: number; unavailable: number; witnessMismatches: number; partitions: number },
    refusals?: { refused: number; unsettled: number },
    commands?: { commandLag: number; orphaned: number },
  ): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, samples: Array<[string, number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of samples) out.push(`${name}${labels} ${formatNumber(v)}`);
    };
    metric('capulator_runs_submitted_total', 'counter', 'Runs accepted by this gateway since it started.', [['', this.submitted]]);
    metric('capulator_runs_ended_total', 'counter', 'Runs that ended, by outcome, as seen in the event log.', [...this.ended].map(([k, v]) => [`{outcome="${k}"}`, v]));
    metric('capulator_runs', 'gauge', 'Runs in the read model, by status.', Object.entries(runsByStatus).map(([k, v]) => [`{status="${k}"}`, v]));
    if (queue) metric('capulator_executor_runs', 'gauge', 'Runs in this process\'s executor, by state.', [['{state="queued"}', queue.queued], ['{state="running"}', queue.running]]);
    metric('capulator_decisions_total', 'counter', 'Recorded decisions (capget, capset, privilege checks), by outcome.', [...this.decisions].map(([k, v]) => [`{decision="${k}"}`, v]));
    out.push('# HELP capulator_trapped_call_latency_seconds Time the agent took to answer a trapped call (PrivilegeChecked latencyNs).');
    out.push('# TYPE capulator_trapped_call_latency_seconds histogram');
    LATENCY_BUCKETS.forEach((b, i) => out.push(`capulator_trapped_call_latency_seconds_bucket{le="${formatNumber(b)}"} ${this.latency.counts[i]}`));
    out.push(`capulator_trapped_call_latency_seconds_bucket{le="+Inf"} ${this.latency.count}`);
    out.push(`capulator_trapped_call_latency_seconds_sum ${formatNumber(this.latency.sum)}`);
    out.push(`capulator_trapped_call_latency_seconds_count ${this.latency.count}`);
    metric('capulator_event_lag_seconds', 'gauge', 'Age of the last event when the gateway received it.', [['', this.lagSeconds]]);
    metric('capulator_event_position', 'gauge', 'Highest position (of any partition) of the events the gateway has folded.', [['', this.lastPosition]]);
    if (refusals) {
      metric('capulator_runs_refused_total', 'counter', 'Submissions refused with 503 because the event log or the bus could not take them.', [['', refusals.refused]]);
      metric('capulator_runs_refusals_unsettled', 'gauge', 'Refused runs whose RunFailed is not in the log yet (waiting for the broker).', [['', refusals.unsettled]]);
    }
    if (bus) {
      metric('capulator_kafka_broker_up', 'gauge', 'Whether the last call to the Kafka broker succeeded (1) or not (0).', [['', bus.brokerUp ? 1 : 0]]);
      metric('capulator_kafka_outages_total', 'counter', 'Times the Kafka broker became unreachable.', [['', bus.outages]]);
      metric('capulator_kafka_recoveries_total', 'counter', 'Times the Kafka broker became reachable again after an outage.', [['', bus.recoveries ?? 0]]);
      metric('capulator_kafka_consumer_restarts_total', 'counter', "Times the event log's fold consumer was started again (stopped by its client, or silent while records waited).", [['', bus.consumerRestarts ?? 0]]);
      metric('capulator_kafka_consumer_lag_records', 'gauge', 'Records of the event log produced but not yet folded by this process, over all partitions.', [['', bus.lag]]);
      metric('capulator_kafka_produce_failures_total', 'counter', 'Produce requests to the event log that failed or were not acknowledged in time.', [['', bus.produceFailures]]);
      metric('capulator_kafka_appends_unavailable_total', 'counter', 'Appends refused because the broker could not be reached.', [['', bus.unavailable]]);
      metric('capulator_kafka_witness_mismatches_total', 'counter', 'Proposals whose writer saw a different log before them (the log was changed).', [['', bus.witnessMismatches]]);
      metric('capulator_kafka_event_partitions', 'gauge', 'Partitions of the event log.', [['', bus.partitions]]);
    }
    if (commands) {
      metric('capulator_kafka_command_lag_records', 'gauge', 'Commands on the command topic not yet finished by the runtime workers (their group\'s committed offsets), over all partitions.', [['', commands.commandLag]]);
      metric('capulator_runs_orphaned_total', 'counter', 'Runs this gateway recorded failed because no command for them ever reached the workers (their gateway died between RunRequested and the command).', [['', commands.orphaned]]);
    }
    return out.join('\n') + '\n';
  }
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+(e|$)/, '$1');
}
